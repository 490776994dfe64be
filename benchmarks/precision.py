"""int8 and fp16 vs fp32: offline engine throughput side by side, with each variant's measured
quality change and size (from its bundle.json, written by `seq2seq-export variant`).

    python -m benchmarks.precision models/translate-en-fr/1 runs/variants/translate-en-fr/2 \
        runs/variants/translate-en-fr/3 --out docs/results/precision.json

The runs interleave (fp32, variant, fp32, variant, ...) and each ratio is the median over the
rounds, so a noisy shared machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.offline import heldout_sources, offline_throughput
from benchmarks.report import environment
from model_export.bundle_eval import dataset_of
from service.bundle import files_bytes
from service.engine.repository import load_bundle
from service.engine.runtime import RuntimeOptions


def compare_precisions(
    bundle_dirs: list[Path],
    *,
    batch_size: int = 32,
    requests: int = 256,
    rounds: int = 3,
    threads: int = 1,
) -> dict[str, Any]:
    """Offline greedy throughput of each bundle; the first is the fp32 reference."""
    options = RuntimeOptions(providers=("cpu",), intra_op_threads=threads)
    bundles = [load_bundle(d, options) for d in bundle_dirs]
    reference = bundles[0]
    if reference.manifest.precision != "fp32":
        raise ValueError(f"{bundle_dirs[0]}: the first bundle must be fp32")
    sources = heldout_sources(reference.manifest.task, dataset_of(reference.manifest))
    runs: dict[int, list[float]] = {i: [] for i in range(len(bundles))}
    for _ in range(rounds):
        for i, bundle in enumerate(bundles):
            result = offline_throughput(bundle, sources, batch_size=batch_size, requests=requests)
            runs[i].append(result.tokens_per_second)
    base = statistics.median(runs[0])
    rows = []
    for i, (bundle_dir, bundle) in enumerate(zip(bundle_dirs, bundles, strict=True)):
        variant = bundle.manifest.training.get("variant", {})
        evaluation = bundle.manifest.evaluation
        tokens_per_second = statistics.median(runs[i])
        rows.append(
            {
                "bundle": f"{bundle.manifest.name}/{bundle.manifest.version}",
                "precision": bundle.manifest.precision,
                "provider": bundle.runtime.provider,
                "size_bytes": files_bytes(bundle_dir),
                "tokens_per_second": round(tokens_per_second, 1),
                "speed_vs_fp32": round(tokens_per_second / base, 3),
                "metrics": evaluation.metrics if evaluation else {},
                "metric_change_vs_fp32": variant.get("metric_change", {})
                if isinstance(variant, dict)
                else {},
                "agreement_with_fp32": variant.get("agreement", {})
                if isinstance(variant, dict)
                else {},
            }
        )
    return {
        "batch_size": batch_size,
        "requests": requests,
        "rounds": rounds,
        "threads": threads,
        "ratio_of": "output tokens per second, median over interleaved rounds",
        "bundles": rows,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        "| bundle | precision | size | tokens/s | speed vs fp32 | metrics | change vs fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["bundles"]:
        metrics = ", ".join(f"{k} {v:.2f}" for k, v in sorted(row["metrics"].items()))
        change = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(row["metric_change_vs_fp32"].items()))
        lines.append(
            f"| {row['bundle']} | {row['precision']} | {row['size_bytes'] / 1e6:.1f} MB | "
            f"{row['tokens_per_second']:.0f} | {row['speed_vs_fp32']:.2f}x | {metrics} | "
            f"{change or '-'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", type=Path, nargs="+", help="fp32 bundle first, then variants")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the report as JSON")
    args = parser.parse_args(argv)
    report = compare_precisions(
        args.bundles,
        batch_size=args.batch_size,
        requests=args.requests,
        rounds=args.rounds,
        threads=args.threads,
    )
    report["environment"] = environment()
    print(table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
