"""Loading a model repository: bad bundles are refused by name, the good ones load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from service import bundle as contract
from service.engine.repository import scan_repository
from service.engine.runtime import RuntimeOptions
from tests.conftest import TEST_MODELS

CPU = RuntimeOptions(providers=("cpu",), intra_op_threads=1)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "models"
    for name in ("translate-en-fr", "summarize-en"):
        shutil.copytree(TEST_MODELS / name / "1", repo / name / "1")
    return repo


def _rewrite_manifest(bundle_dir: Path) -> None:
    """Re-checksum after an edit, as a careless exporter would."""
    fields = json.loads((bundle_dir / contract.MANIFEST_FILE).read_text())
    fields.pop("files")
    contract.write_manifest(bundle_dir, fields)


def test_good_repository_loads_everything(repository: Path) -> None:
    scan = scan_repository(repository, CPU)
    assert sorted(b.manifest.name for b in scan.loaded) == ["summarize-en", "translate-en-fr"]
    assert scan.refused == {}
    assert all(b.runtime.provider == "CPUExecutionProvider" for b in scan.loaded)


def test_tampered_file_is_refused_and_the_rest_load(repository: Path) -> None:
    decoder = repository / "summarize-en" / "1" / contract.DECODER_FILE
    decoder.write_bytes(decoder.read_bytes()[:-10])
    scan = scan_repository(repository, CPU)
    assert [b.manifest.name for b in scan.loaded] == ["translate-en-fr"]
    (why,) = scan.refused.values()
    assert "decoder.onnx" in why and "sha256" in why


def test_graph_that_breaks_the_contract_is_refused(repository: Path) -> None:
    bundle_dir = repository / "summarize-en" / "1"
    model = onnx.load(str(bundle_dir / contract.DECODER_FILE))
    old = model.graph.input[0].name
    for node in model.graph.node:
        node.input[:] = ["renamed_ids" if name == old else name for name in node.input]
    model.graph.input[0].name = "renamed_ids"
    onnx.save(model, str(bundle_dir / contract.DECODER_FILE))
    _rewrite_manifest(bundle_dir)
    scan = scan_repository(repository, CPU)
    (why,) = scan.refused.values()
    assert "decoder.onnx" in why and "renamed_ids" in why and old in why


def test_unreadable_onnx_is_refused_by_name(repository: Path) -> None:
    bundle_dir = repository / "summarize-en" / "1"
    (bundle_dir / contract.ENCODER_FILE).write_bytes(b"not an onnx model")
    _rewrite_manifest(bundle_dir)
    scan = scan_repository(repository, CPU)
    (why,) = scan.refused.values()
    assert "encoder.onnx" in why and "onnxruntime cannot load it" in why


def test_vocabulary_mismatch_is_refused(repository: Path) -> None:
    bundle_dir = repository / "summarize-en" / "1"
    fields = json.loads((bundle_dir / contract.MANIFEST_FILE).read_text())
    fields["vocab_size"] += 1
    (bundle_dir / contract.MANIFEST_FILE).write_text(json.dumps(fields))
    scan = scan_repository(repository, CPU)
    (why,) = scan.refused.values()
    assert "tokenizer.json" in why and "vocabulary" in why


def test_half_written_bundle_without_manifest_is_refused(repository: Path) -> None:
    (repository / "summarize-en" / "1" / contract.MANIFEST_FILE).unlink()
    scan = scan_repository(repository, CPU)
    (why,) = scan.refused.values()
    assert "missing manifest" in why


def test_missing_repository_is_reported(tmp_path: Path) -> None:
    scan = scan_repository(tmp_path / "nowhere", CPU)
    assert scan.loaded == []
    assert "does not exist" in next(iter(scan.refused.values()))
