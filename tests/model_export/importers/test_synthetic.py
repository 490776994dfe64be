"""`seq2seq-export random-marian`: a random-weight Marian of the asked shape whose tokenizer is
fitted on a prepared training split, whose outputs differ and end both ways, and which the
import command takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_export import data as prepared_data
from model_export.cli import main

SHAPE = ["--d-model", "24", "--encoder-layers", "3", "--decoder-layers", "1", "--heads", "6",
         "--ffn-size", "40", "--untied", "--init-std", "0.3", "--vocab-size", "300"]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("random-marian") / "checkpoint"
    args = ["random-marian", str(out), "--data", str(prepared), "--languages", "en-de", *SHAPE]
    assert main(args) == 0
    return out


def test_the_shape_and_tokenizer_asked_for(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_layers"]) == (24, 3, 1)
    assert config["encoder_attention_heads"] == config["decoder_attention_heads"] == 6
    assert config["encoder_ffn_dim"] == config["decoder_ffn_dim"] == 40
    assert config["tie_word_embeddings"] is False
    assert config["share_encoder_decoder_embeddings"] is False
    tokenizer = json.loads((checkpoint / "tokenizer_config.json").read_text())
    assert (tokenizer["source_lang"], tokenizer["target_lang"]) == ("en", "de")
    vocab = json.loads((checkpoint / "vocab.json").read_text())
    assert config["vocab_size"] == len(vocab) and vocab["</s>"] == 0
    assert max(vocab.values()) == vocab["<pad>"] == config["pad_token_id"]


def test_outputs_differ_and_end_both_ways(checkpoint: Path, prepared: Path) -> None:
    from transformers import MarianMTModel, MarianTokenizer

    tokenizer = MarianTokenizer.from_pretrained(checkpoint)
    model = MarianMTModel.from_pretrained(checkpoint).eval()
    sources = [r["source"] for r in prepared_data.load_split(prepared, "translate-en-de", "test")]
    batch = tokenizer(sources[:40], padding=True, return_tensors="pt")
    out = model.generate(**batch, num_beams=1, max_new_tokens=16)
    outputs = [tuple(t for t in row.tolist() if t != tokenizer.pad_token_id) for row in out]
    assert len(set(outputs)) >= 10  # of 40: not one repeated sentence (the default init)
    early = [len(row) < 16 for row in outputs]  # EOS before the cap (it is forced at the cap)
    assert any(early) and not all(early)


def test_the_import_command_takes_it(checkpoint: Path, tmp_path: Path) -> None:
    repo = tmp_path / "models"
    assert main(["import", str(checkpoint), "--repo", str(repo), "--name", "unseen"]) == 0
    manifest = json.loads((repo / "unseen" / "1" / "bundle.json").read_text())
    assert manifest["languages"] == {"source": "en", "target": "de"}
    assert manifest["training"]["checks"]["greedy_mismatches"] == 0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--heads", "5"], "--d-model 24 is not a multiple of --heads 5"),
        (["--languages", "en-xx"], "translate-en-xx"),
    ],
)
def test_refusals_are_one_line(
    extra: list[str], expected: str, prepared: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "checkpoint"
    args = ["random-marian", str(out), "--data", str(prepared), *SHAPE, *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seq2seq-export: error:") and expected in err and "\n" not in err
    assert not out.exists()


def test_an_existing_folder_is_refused(checkpoint: Path, prepared: Path, capsys) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in checkpoint.iterdir()}
    assert main(["random-marian", str(checkpoint), "--data", str(prepared), *SHAPE]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in checkpoint.iterdir()} == before
