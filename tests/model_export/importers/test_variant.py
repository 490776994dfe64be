"""An imported bundle scored on a test split at import, and its int8 variant: a complete
bundle the server loads, with its size and quality change recorded."""

from __future__ import annotations

from pathlib import Path

from model_export.cli import main
from model_export.importers.importer import import_checkpoint
from service.bundle import read_manifest, verify_checksums
from service.engine.offline import Seq2SeqEngine


def test_import_with_data_then_int8_variant(
    checkpoints: dict[str, Path], prepared: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "models"
    result = import_checkpoint(
        checkpoints["marian"],
        repo=repo,
        name="marian",
        languages="en-fr",
        max_target_length=24,
        data_dir=prepared,
        threads=1,
        log=lambda _: None,
    )
    evaluation = result.manifest.evaluation
    assert evaluation is not None and evaluation.num_examples > 0
    assert {"bleu", "chrf"} <= set(evaluation.metrics)
    assert "copy_source" in evaluation.baselines

    code = main(
        ["variant", str(result.bundle_dir), "--precision", "int8", "--repo", str(repo),
         "--version", "2", "--data", str(prepared), "--threads", "1"]
    )  # fmt: skip
    assert code == 0
    variant_dir = repo / "marian" / "2"
    manifest = read_manifest(variant_dir)
    verify_checksums(variant_dir, manifest)
    assert manifest.precision == "int8" and manifest.tokenizer.kind == "sentencepiece"
    recorded = manifest.training["variant"]
    assert recorded["size_bytes"] < recorded["source_size_bytes"]  # type: ignore[index]
    assert recorded["agreement"]["examples"] > 0  # type: ignore[index]
    engine = Seq2SeqEngine(variant_dir, intra_op_threads=1)
    assert engine.generate_batch(["A tool to compress files"], beam_size=4)[0].hypotheses
