"""`train_marian` (seq2seq-export train-marian) on the prepared fixture: a tiny recipe learns
(the validation loss falls), keeps its best evaluation, and leaves a folder that transformers
loads and the import command takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_export.hf_marian import MarianRecipe, train_marian
from model_export.importers.importer import import_checkpoint

TINY = MarianRecipe(
    spm_vocab_size=300,
    d_model=32,
    layers=1,
    heads=2,
    ffn_size=64,
    batch_sentences=16,
    lr=3e-3,
    warmup_steps=10,
    max_steps=60,
    eval_every=20,
    valid_examples=50,
)


@pytest.fixture(scope="module")
def trained(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("train-marian") / "checkpoint"
    summary = train_marian(prepared, out, minutes=5, threads=1, recipe=TINY, log=lambda _: None)
    return out, summary


def test_it_learns_and_keeps_the_best_evaluation(trained: tuple[Path, dict]) -> None:
    out, summary = trained
    history = summary["history"]
    assert summary["steps"] == TINY.max_steps and len(history) == 3
    losses = [h["valid_loss"] for h in history]
    assert min(losses) < losses[0]
    assert summary["best_valid_loss"] == round(min(losses), 4)
    assert summary["best_step"] == history[losses.index(min(losses))]["step"]
    assert json.loads((out / "training.json").read_text())["steps"] == TINY.max_steps


def test_the_folder_is_a_checkpoint_the_importer_takes(
    trained: tuple[Path, dict], tmp_path: Path
) -> None:
    from transformers import MarianMTModel

    out, _ = trained
    model = MarianMTModel.from_pretrained(out)
    assert model.config.d_model == TINY.d_model and model.config.decoder_start_token_id == (
        model.config.pad_token_id
    )
    assert model.generation_config.bad_words_ids == [[model.config.pad_token_id]]
    result = import_checkpoint(out, repo=tmp_path, name="trained", threads=1, log=lambda _: None)
    assert result.manifest.languages is not None
    assert (result.manifest.languages.source, result.manifest.languages.target) == ("en", "fr")
    assert result.checks["greedy_mismatches"] == 0
