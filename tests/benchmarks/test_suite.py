"""Smoke runs of the benchmark scripts with tiny sizes: plumbing and JSON shape, no speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.ort_vs_torch import ort_vs_torch
from benchmarks.suite import run_suite, run_sweep
from model_export.precision import convert_files
from service.bundle import read_manifest, write_manifest
from tests.benchmarks.conftest import tiny_model, tiny_sizes
from tests.conftest import REPO_ROOT, TEST_MODELS

SECTIONS = (
    "b_served_vs_offline",
    "c_batched_vs_unbatched",
    "d_continuous_vs_static",
    "e_latency_at_half_saturation",
)


def test_ort_vs_torch_times_both_sides_on_the_same_weights() -> None:
    result = ort_vs_torch(batch_sizes=(1, 3), steps=2, repeats=1, config=tiny_model())
    assert [row["batch_size"] for row in result["rows"]] == [1, 3]
    for row in result["rows"]:
        assert row["same_last_tokens"]  # same weights, same steps: same greedy tokens
        assert row["torch_eager_seconds"] > 0 and row["onnxruntime_seconds"] > 0
        assert row["speedup"] > 0


def _int8_variant(repo: Path) -> Path:
    """An int8 copy of the committed translate bundle (converted here; not re-scored)."""
    source = TEST_MODELS / "translate-en-fr" / "1"
    target = repo / "translate-en-fr" / "3"
    target.mkdir(parents=True)
    convert_files(source, target, "int8")
    manifest = read_manifest(source)
    write_manifest(
        target, manifest.model_dump(exclude={"files"}) | {"version": 3, "precision": "int8"}
    )
    return target


def test_suite_writes_every_comparison(tmp_path: Path) -> None:
    report = run_suite(
        tmp_path,
        models=TEST_MODELS,
        sizes=tiny_sizes(),
        ort_steps=2,
        ort_repeats=1,
        ort_config=tiny_model(),
        variants=(_int8_variant(tmp_path / "variants"),),
    )
    written = json.loads((tmp_path / "benchmarks.json").read_text())
    assert written["summary"] == report["summary"]
    assert len(written["summary"]) == 8  # a: batch 1 and 32 at 1 and 2 threads; b-e
    assert {"threads_1", "threads_2"} <= written["a_ort_vs_torch"].keys()
    assert {"cpu", "cpus_usable", "load_average_1_5_15"} <= written["environment"].keys()
    for name in SECTIONS:
        section = written[name]
        assert {"ratio", "ratio_of", "target"} <= section.keys()
        runs = [v for v in section.values() if isinstance(v, dict) and "mode" in v]
        assert runs, name
        for run in runs:
            assert run["errors"] == {} and run["requests"] > 0
            assert {"p50_ms", "p99_ms", "server_total_p99_ms", "requests_per_second"} <= run.keys()
            assert run["engine"]["decoder_steps"] > 0
            assert {"engine_thread", "engine_process"} <= run["server_cpu_seconds"].keys()
    offline = written["b_served_vs_offline"]["offline"]
    assert offline["requests"] == tiny_sizes().offline_requests
    assert 0 < offline["engine"]["onnxruntime_share_of_wall"] <= 1
    static = written["d_continuous_vs_static"]["static"]["engine"]
    assert static["mean_decode_batch"] <= tiny_sizes().max_batch_size
    assert written["c_batched_vs_unbatched"]["unbatched"]["engine"]["mean_decode_batch"] == 1.0
    precision = written["g_precision"]["bundles"]
    assert [row["precision"] for row in precision] == ["fp32", "int8"]
    assert precision[1]["tokens_per_second"] > 0 and precision[0]["speed_vs_fp32"] == 1.0
    sweep = written["f_saturation_sweep"]
    saturation = written["b_served_vs_offline"]["served"]["requests_per_second"]
    assert sweep["saturation_requests_per_second"] == saturation
    assert [p["fraction"] for p in sweep["points"]] == list(tiny_sizes().sweep_fractions)
    for point in sweep["points"]:
        assert point["offered_rps"] == round(point["fraction"] * saturation, 1)
        assert point["run"]["mode"] == "poisson" and point["run"]["requests"] > 0
        assert point["throughput_rps"] > 0 and point["p99_ms"] >= point["p50_ms"] > 0


def test_sweep_alone_measures_saturation_first(tmp_path: Path) -> None:
    report = run_sweep(tmp_path, models=TEST_MODELS, sizes=tiny_sizes(sweep_fractions=(0.5,)))
    written = json.loads((tmp_path / "saturation_sweep.json").read_text())
    assert written["f_saturation_sweep"] == report["f_saturation_sweep"]
    saturation = written["saturation"]["requests_per_second"]
    assert saturation > 0 and written["saturation"]["errors"] == {}
    (point,) = written["f_saturation_sweep"]["points"]
    assert point["offered_rps"] == round(0.5 * saturation, 1) and point["run"]["requests"] > 0


def test_ort_vs_torch_command_writes_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.ort_vs_torch",
            str(tmp_path),
            "--steps",
            "1",
            "--repeats",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "ort_vs_torch.json").read_text())
    assert [row["batch_size"] for row in written["rows"]] == [1, 32]
    assert "speedup" in done.stdout
