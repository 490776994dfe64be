"""Figures of tiny bundles built in the run: re-scoring, the served re-check, fp16/int8
variants and the attention/no-attention comparison."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from benchmarks.precision import compare_precisions, table
from model_export.ablation import (
    NO_ATTENTION_BASELINE,
    AblationError,
    compare_attention,
    record_in_bundle,
    write_report,
)
from model_export.cli import main as export_main
from model_export.precision import VariantError, make_variant
from model_export.report import render_ablation, render_by_length, render_variants
from model_export.served_eval import check_served
from seq2seq_client import AsyncSeq2SeqClient, DecodeOptions, Seq2SeqError
from service.bundle import read_manifest, verify_checksums
from service.engine.repository import load_bundle
from service.engine.runtime import RuntimeOptions
from service.server.server import Seq2SeqServer
from tests.integration.conftest import make_settings
from tests.model_export.factories import build_tiny_bundle


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("figures")
    attention, data = build_tiny_bundle(root)
    none, _ = build_tiny_bundle(root / "ablation", data=data, model={"attention_kind": "none"})
    return {"data": data, "attention": attention, "none": none}


def test_evaluate_command_reproduces_the_recorded_figures(tiny, capsys) -> None:
    assert export_main(["evaluate", str(tiny["attention"]), "--data", str(tiny["data"])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["now"] == report["recorded"]
    by_length = read_manifest(tiny["attention"]).evaluation.by_source_length
    assert sum(b["count"] for b in by_length.values()) == 24


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_variant_is_a_servable_rescored_bundle(tiny, tmp_path: Path, precision: str) -> None:
    source = read_manifest(tiny["attention"])
    manifest = make_variant(
        tiny["attention"], tmp_path, precision, data_dir=tiny["data"], version=2
    )
    bundle_dir = tmp_path / source.name / "2"
    verify_checksums(bundle_dir, read_manifest(bundle_dir))
    variant = manifest.training["variant"]
    assert manifest.precision == precision and variant["source"] == f"{source.name}/1"
    assert variant["metric_change"] == {
        k: round(manifest.evaluation.metrics[k] - source.evaluation.metrics[k], 2)
        for k in source.evaluation.metrics
    }
    assert variant["size_bytes"] < variant["source_size_bytes"]
    assert variant["agreement"]["examples"] == 24
    if precision == "fp16":  # fp16 rounding barely moves a greedy decode
        assert variant["agreement"]["greedy_identical"] >= 0.9
        assert variant["agreement"]["max_abs_diff_log_probs"] < 0.05
    loaded = load_bundle(bundle_dir, RuntimeOptions(providers=("cpu",), intra_op_threads=1))
    assert loaded.manifest.precision == precision
    assert f"| {source.name}/1 | {precision} |" in render_variants(tmp_path)


def test_variant_refuses_to_overwrite_or_to_stack(tiny, tmp_path: Path) -> None:
    make_variant(tiny["attention"], tmp_path, "int8", data_dir=tiny["data"], version=2)
    before = (tmp_path / "translate-en-fr" / "2" / "bundle.json").read_bytes()
    with pytest.raises(VariantError, match="already exists"):
        make_variant(tiny["attention"], tmp_path, "fp16", data_dir=tiny["data"], version=2)
    assert (tmp_path / "translate-en-fr" / "2" / "bundle.json").read_bytes() == before
    with pytest.raises(VariantError, match="must be fp32"):
        make_variant(
            tmp_path / "translate-en-fr" / "2", tmp_path, "fp16", data_dir=tiny["data"], version=3
        )


def test_attention_comparison_is_recorded_in_the_bundle(tiny, tmp_path: Path) -> None:
    comparison = compare_attention(tiny["attention"], tiny["none"], tiny["data"])
    att, none = comparison["attention"], comparison["no_attention"]
    assert comparison["gain"]["bleu"] == round(att["metrics"]["bleu"] - none["metrics"]["bleu"], 2)
    assert set(comparison["gain_by_source_length"]) <= set(att["by_source_length"])
    manifest = record_in_bundle(tiny["attention"], comparison)
    assert manifest.evaluation.baselines[NO_ATTENTION_BASELINE] == none["metrics"]
    verify_checksums(tiny["attention"], manifest)
    write_report(tmp_path / "ablation.json", comparison)
    rendered = render_ablation([tmp_path / "ablation.json"])
    assert f"| gain | {comparison['gain']['bleu']:+.2f} |" in rendered
    assert "translate-en-fr v1 (bleu)" in render_by_length(tiny["attention"].parent.parent)
    with pytest.raises(AblationError, match="has no attention"):
        compare_attention(tiny["none"], tiny["none"], tiny["data"])
    with pytest.raises(AblationError, match="has attention soft"):
        compare_attention(tiny["attention"], tiny["attention"], tiny["data"])


async def test_served_figures_match_the_bundle(tiny, tmp_path: Path) -> None:
    repo = tiny["attention"].parent.parent
    server = Seq2SeqServer(make_settings(model_repository=repo))
    await server.start()
    target = f"127.0.0.1:{server.port}"
    out = tmp_path / "served.json"
    args = ["verify-served", str(tiny["attention"]), "--data", str(tiny["data"])]
    try:
        check = await asyncio.to_thread(check_served, target, tiny["attention"], tiny["data"])
        code = await asyncio.to_thread(export_main, [*args, "--target", target, "--out", str(out)])
        partial = await asyncio.to_thread(
            check_served, target, tiny["attention"], tiny["data"], limit=5
        )
    finally:
        await server.drain_and_stop(grace=1.0)
    assert check.examples == 24
    assert check.served == check.recorded, check
    assert code == 0 and json.loads(out.read_text())[0]["served"] == check.served
    assert partial.examples == 5 and partial.served == partial.recorded


async def test_verify_served_against_no_server_is_a_clear_error(tiny, capsys) -> None:
    args = ["verify-served", str(tiny["attention"]), "--data", str(tiny["data"])]
    code = await asyncio.to_thread(export_main, [*args, "--target", "127.0.0.1:1"])
    assert code == 2
    assert "UNAVAILABLE" in capsys.readouterr().err


async def test_a_no_attention_bundle_serves_and_refuses_attention_requests(tiny) -> None:
    repo = tiny["none"].parent.parent
    server = Seq2SeqServer(make_settings(model_repository=repo))
    await server.start()
    try:
        async with AsyncSeq2SeqClient(f"127.0.0.1:{server.port}") as client:
            plain = await client.translate("the red cat", "fr")
            with pytest.raises(Seq2SeqError) as refused:
                await client.translate(
                    "the red cat", "fr", options=DecodeOptions(return_attention=True)
                )
    finally:
        await server.drain_and_stop(grace=1.0)
    assert plain.model.name == "translate-en-fr" and plain.text
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "has no attention" in refused.value.details


def test_precision_benchmark_reports_each_variant_beside_fp32(tiny, tmp_path: Path) -> None:
    for version, precision in ((2, "fp16"), (3, "int8")):
        make_variant(tiny["attention"], tmp_path, precision, data_dir=tiny["data"], version=version)
    dirs = [
        tiny["attention"],
        tmp_path / "translate-en-fr" / "2",
        tmp_path / "translate-en-fr" / "3",
    ]
    report = compare_precisions(dirs, batch_size=4, requests=8, rounds=1)
    rows = report["bundles"]
    assert [r["precision"] for r in rows] == ["fp32", "fp16", "int8"]
    assert rows[0]["speed_vs_fp32"] == 1.0 and all(r["tokens_per_second"] > 0 for r in rows)
    assert rows[2]["metric_change_vs_fp32"].keys() == {"bleu", "chrf"}
    assert "| int8 |" in table(report)
    with pytest.raises(ValueError, match="must be fp32"):
        compare_precisions(dirs[1:], requests=1, rounds=1)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--attention-scope", "local"], "attention_scope 'local' needs attention_window"),
        (["--architecture", "transformer", "--attention-kind", "hard"], "cross-attention is soft"),
        (["--architecture", "transformer", "--cell", "lstm"], "cell 'lstm' is for architecture"),
        (
            ["--attention-kind", "none", "--attention-scope", "local", "--attention-window", "2"],
            "'none' has no scope",
        ),
        (["--hidden-size", "33"], "must be even"),
    ],
)
def test_an_impossible_config_is_refused_and_overwrites_nothing(
    tiny, capsys, flags: list[str], message: str
) -> None:
    manifest_path = tiny["attention"] / "bundle.json"
    before = manifest_path.read_bytes()
    repo = str(tiny["attention"].parent.parent)
    args = ["build", "--task", "translate", "--languages", "en-fr", "--data", str(tiny["data"])]
    code = export_main([*args, "--repo", repo, "--overwrite", "--no-progress", *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert manifest_path.read_bytes() == before


async def test_sources_the_server_refuses_are_left_out_and_counted(tiny, tmp_path: Path) -> None:
    short, _ = build_tiny_bundle(tmp_path, data=tiny["data"], model={"max_source_length": 5})
    server = Seq2SeqServer(make_settings(model_repository=short.parent.parent))
    await server.start()
    try:
        check = await asyncio.to_thread(
            check_served, f"127.0.0.1:{server.port}", short, tiny["data"]
        )
    finally:
        await server.drain_and_stop(grace=1.0)
    assert 0 < check.too_long < 24 and check.examples == 24 - check.too_long
    assert check.served == check.recorded != check.in_bundle_json
