"""`seq2seq-export import`: what the bundle records, and every refusal (one line naming the
file, exit status 2, nothing written)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from model_export.cli import main
from model_export.importers.importer import ImportResult
from service.bundle import read_manifest, sha256_file, verify_checksums
from tests.model_export.importers.factories import make_marian


def test_manifest_records_the_source_and_the_decoding_rules(
    imported: dict[str, ImportResult], checkpoints: dict[str, Path]
) -> None:
    marian = read_manifest(imported["marian"].bundle_dir)
    verify_checksums(imported["marian"].bundle_dir, marian)
    source = marian.imported_from
    assert source is not None
    assert (source.architecture, source.model_type) == ("MarianMTModel", "marian")
    folder = checkpoints["marian"]
    assert source.files == {p.name: sha256_file(p) for p in folder.iterdir() if p.is_file()}
    assert {"config.json", "model.safetensors", "source.spm", "vocab.json"} <= set(source.files)
    assert source.suppressed_ids == (marian.special_tokens.pad_id,)
    assert marian.special_tokens.bos_id == marian.special_tokens.pad_id  # the decoder's start
    assert marian.tokenizer.kind == "sentencepiece"
    assert {"source.spm", "target.spm", "vocab.json"} <= set(marian.files)
    rules = marian.decoding
    assert (rules.beam, rules.length_penalty, rules.eos_at_limit) == ("hf", 1.0, True)
    axes = {s.name: (s.source_axis, s.target_axis) for s in marian.states}
    assert axes["self_keys_0"] == (None, 2) and axes["cross_values_0"] == (2, None)
    assert axes["position"] == (None, None)
    assert marian.training["checks"]["greedy_mismatches"] == 0  # type: ignore[index]

    bart = read_manifest(imported["bart"].bundle_dir)
    assert bart.imported_from is not None and bart.imported_from.forced_bos_id == 0
    assert bart.special_tokens.bos_id == bart.special_tokens.eos_id  # BART starts from EOS
    assert bart.tokenizer.kind == "tokenizers" and bart.tokenizer.post_processor
    mbart = read_manifest(imported["mbart"].bundle_dir)
    assert mbart.imported_from is not None and mbart.imported_from.model_type == "mbart"
    assert mbart.architecture == "bart" and mbart.task == "summarize"


def _edit_json(path: Path, **changes: object) -> None:
    fields = json.loads(path.read_text())
    fields.update(changes)
    path.write_text(json.dumps(fields))


def _no_config(folder: Path) -> str:
    (folder / "config.json").unlink()
    return "config.json: missing; not a Hugging Face checkpoint folder"


def _t5(folder: Path) -> str:
    _edit_json(
        folder / "config.json", model_type="t5", architectures=["T5ForConditionalGeneration"]
    )
    return "model_type 't5' (T5ForConditionalGeneration) cannot be imported; supported: marian"


def _no_weights(folder: Path) -> str:
    (folder / "model.safetensors").unlink()
    return "model.safetensors: missing; the folder has no weights"


def _no_source_spm(folder: Path) -> str:
    (folder / "source.spm").unlink()
    return "source.spm: missing; Marian's tokenizer needs source.spm, target.spm, vocab.json"


def _wider_config(folder: Path) -> str:
    _edit_json(folder / "config.json", d_model=48)
    return "model.safetensors: the weights do not match config.json: mismatched keys: model."


def _deeper_config(folder: Path) -> str:
    _edit_json(folder / "config.json", decoder_layers=3)
    return "model.safetensors: the weights do not match config.json: missing keys: model.decoder"


def _bad_vocab_json(folder: Path) -> str:
    (folder / "vocab.json").write_text("[1, 2]")
    return "vocab.json: not a JSON object of piece -> id"


def _corrupt_config(folder: Path) -> str:
    (folder / "config.json").write_text("{not json")
    return "config.json: not valid JSON"


BAD_INPUTS: dict[str, Callable[[Path], str]] = {
    "no config": _no_config,
    "corrupt config": _corrupt_config,
    "unsupported architecture": _t5,
    "no weights": _no_weights,
    "missing tokenizer file": _no_source_spm,
    "vocab.json not a mapping": _bad_vocab_json,
    "weights narrower than the config": _wider_config,
    "config deeper than the weights": _deeper_config,
}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["import", *args, "--threads", "1"])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("breakage", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_checkpoint_is_one_error_line_and_writes_nothing(
    breakage: Callable[[Path], str],
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoints["marian"], folder)
    expected = breakage(folder)
    repo = tmp_path / "repo"
    code, err = _run(
        [str(folder), "--repo", str(repo), "--name", "x", "--languages", "en-fr"], capsys
    )
    assert code == 2
    assert len(err) == 1 and err[0].startswith("seq2seq-export: error: "), err
    assert f"{folder}/" in err[0] and expected in err[0], err[0]
    assert not repo.exists()


def test_vocabulary_larger_than_the_tokenizer_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_marian(tmp_path / "checkpoint", vocab_size=700)  # the tokenizer has fewer
    repo = tmp_path / "repo"
    repo.mkdir()
    code, err = _run([str(folder), "--repo", str(repo), "--name", "x"], capsys)
    assert code == 2 and len(err) == 1, err
    assert f"{folder}/config.json: the model's vocabulary of 700 ids is larger than its " in err[0]
    assert list(repo.iterdir()) == []  # the repository existed: only the bundle is not there


def test_not_a_folder_and_an_existing_version_are_refused(
    imported: dict[str, ImportResult],
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _run([str(tmp_path / "nowhere"), "--repo", str(tmp_path), "--name", "x"], capsys)
    assert (code, err) == (2, [f"seq2seq-export: error: {tmp_path / 'nowhere'}: not a folder"])
    existing = imported["bart"].bundle_dir
    before = sorted(p.name for p in existing.iterdir())
    code, err = _run(
        [str(checkpoints["bart"]), "--repo", str(existing.parents[1]), "--name", "bart"], capsys
    )
    assert code == 2 and err == [
        f"seq2seq-export: error: {existing}: already exists; pick another --version or --overwrite"
    ]
    assert sorted(p.name for p in existing.iterdir()) == before


def test_data_folder_that_was_not_prepared_is_refused_before_any_work(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    repo = tmp_path / "repo"
    code, err = _run(
        [str(checkpoints["marian"]), "--repo", str(repo), "--name", "x", "--data", str(data)],
        capsys,
    )
    assert (code, err) == (
        2,
        [
            f"seq2seq-export: error: {data / 'manifest.json'}: missing; --data takes a folder "
            "written by `python -m model_export.data prepare`"
        ],
    )
    assert not repo.exists()
