"""The bundle contract: what the manifest accepts, and how a bad bundle is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service import bundle
from tests.service.conftest import manifest_fields


def test_write_then_read_round_trips(bundle_dir: Path) -> None:
    written = bundle.write_manifest(bundle_dir, manifest_fields())
    read = bundle.read_manifest(bundle_dir)
    assert read == written
    bundle.verify_checksums(bundle_dir, read)
    assert set(read.files) == {"encoder.onnx", "decoder.onnx", "tokenizer.json"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"languages": None}, "must name its languages"),
        ({"task": "summarize"}, "languages is only valid for translate"),
        ({"cell": None}, "must name its cell"),
        ({"attention": {"scope": "local"}}, "needs attention.window"),
        ({"attention": {"window": 3}}, "only valid with scope 'local'"),
        ({"attention": {"score": "telepathy"}}, "score"),
        ({"task": "answer", "languages": None}, "sep_id and no_answer_id"),
        (
            {"states": [{"name": "h", "batch_axis": 0}, {"name": "h", "batch_axis": 1}]},
            "duplicate state names",
        ),
        (
            {"states": [{"name": "k", "batch_axis": 0, "target_axis": 2, "constant": True}]},
            "grows on a target axis, so it is not constant",
        ),
        (
            {"schema_version": 1, "states": [{"name": "k", "batch_axis": 0, "constant": True}]},
            "need schema_version 2",
        ),
        ({"precision": "fp8"}, "precision"),
        ({"architecture": "lstm"}, "architecture"),  # a cell, not a family
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_manifest_refuses_impossible_combinations(
    bundle_dir: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        bundle.write_manifest(bundle_dir, manifest_fields(**overrides))
    assert not (bundle_dir / bundle.MANIFEST_FILE).exists()


def test_missing_manifest_is_named(bundle_dir: Path) -> None:
    with pytest.raises(bundle.BundleError, match="missing manifest"):
        bundle.read_manifest(bundle_dir)


def test_corrupt_json_is_named(bundle_dir: Path) -> None:
    (bundle_dir / bundle.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(bundle.BundleError, match=r"bundle\.json: not valid JSON"):
        bundle.read_manifest(bundle_dir)


def test_folder_must_match_name_and_version(bundle_dir: Path) -> None:
    bundle.write_manifest(bundle_dir, manifest_fields())
    raw = json.loads((bundle_dir / bundle.MANIFEST_FILE).read_text())
    raw["version"] = 2
    (bundle_dir / bundle.MANIFEST_FILE).write_text(json.dumps(raw))
    with pytest.raises(bundle.BundleError, match="does not match its folder '1'"):
        bundle.read_manifest(bundle_dir)


def test_tampered_file_fails_checksum(bundle_dir: Path) -> None:
    manifest = bundle.write_manifest(bundle_dir, manifest_fields())
    (bundle_dir / "decoder.onnx").write_bytes(b"tampered")
    with pytest.raises(bundle.BundleError, match=r"decoder\.onnx: sha256 .* differs"):
        bundle.verify_checksums(bundle_dir, manifest)


def test_deleted_file_is_named(bundle_dir: Path) -> None:
    manifest = bundle.write_manifest(bundle_dir, manifest_fields())
    (bundle_dir / "tokenizer.json").unlink()
    with pytest.raises(bundle.BundleError, match=r"tokenizer\.json: listed in bundle\.json"):
        bundle.verify_checksums(bundle_dir, manifest)


def test_required_files_must_be_checksummed(bundle_dir: Path) -> None:
    (bundle_dir / "encoder.onnx").unlink()
    with pytest.raises(ValidationError, match=r"lacks checksums for encoder\.onnx"):
        bundle.write_manifest(bundle_dir, manifest_fields())


def test_answer_source_text_joins_with_separator() -> None:
    text = bundle.answer_source_text("  Who? ", " Alice maintains it. ")
    assert text == f"Who? {bundle.ANSWER_SEPARATOR_TOKEN} Alice maintains it."


def test_constant_states_are_optional_and_have_no_step_output(bundle_dir: Path) -> None:
    states = [
        {"name": "cross", "batch_axis": 0, "source_axis": 2, "constant": True},
        {"name": "cache", "batch_axis": 0, "target_axis": 2},  # no flag: a schema-2 bundle
    ]
    written = bundle.write_manifest(bundle_dir, manifest_fields(schema_version=2, states=states))
    assert [s.constant for s in written.states] == [True, False]
    assert bundle.updated_states(written.states) == ("cache",)
    assert bundle.schema_version_for(written.states[:1]) == 2
    raw = json.loads((bundle_dir / bundle.MANIFEST_FILE).read_text())["states"]
    assert [s.get("constant") for s in raw] == [True, None]  # as before the flag existed
