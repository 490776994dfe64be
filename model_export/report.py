"""Render the evaluation figures of every bundle in a repository as markdown tables.

    python -m model_export.report models [docs/results/attention_*.json]

The main table, then each bundle's figures by source length, then (for each comparison JSON
written by `seq2seq-export compare-attention`) attention vs no attention by source length.

The figures come from each bundle.json, so the docs cannot drift from what was measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from model_export.bundle_eval import LENGTH_BUCKETS
from service.bundle import BundleManifest, files_bytes, read_manifest


def _bundles(repo: Path) -> list[tuple[Path, BundleManifest]]:
    found = []
    for manifest_path in sorted(repo.glob("*/*/bundle.json")):
        found.append((manifest_path.parent, read_manifest(manifest_path.parent)))
    return found


def _figures(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in sorted(metrics.items()))


def render(repo: Path) -> str:
    lines = [
        "| bundle | task | test examples | model (greedy) | baselines | size |",
        "|---|---|---|---|---|---|",
    ]
    for bundle_dir, manifest in _bundles(repo):
        evaluation = manifest.evaluation
        size = files_bytes(bundle_dir) / 1e6
        if evaluation is None:
            lines.append(
                f"| {manifest.name} v{manifest.version} | {manifest.task} | - | - | - "
                f"| {size:.1f} MB |"
            )
            continue
        baselines = "; ".join(
            f"{name}: {_figures(figures)}" for name, figures in sorted(evaluation.baselines.items())
        )
        lines.append(
            f"| {manifest.name} v{manifest.version} | {manifest.task} | "
            f"{evaluation.num_examples} | {_figures(evaluation.metrics)} | {baselines} | "
            f"{size:.1f} MB |"
        )
    return "\n".join(lines)


def _headline(metrics: dict[str, float]) -> str:
    """The first metric of a task's set: BLEU, ROUGE-1 or exact match."""
    for name in ("bleu", "rouge1", "exact_match"):
        if name in metrics:
            return name
    return sorted(metrics)[0]


def _bucket_cells(buckets: dict[str, dict[str, float]], metric: str) -> list[str]:
    return [
        f"{buckets[label][metric]:.2f} (n={int(buckets[label]['count'])})"
        if label in buckets
        else "-"
        for label, _, _ in LENGTH_BUCKETS
    ]


def render_by_length(repo: Path) -> str:
    lines = []
    for _, manifest in _bundles(repo):
        evaluation = manifest.evaluation
        if evaluation is None or not evaluation.by_source_length:
            continue
        metric = _headline(evaluation.metrics)
        cells = _bucket_cells(evaluation.by_source_length, metric)
        lines.append(
            f"| {manifest.name} v{manifest.version} ({metric}) | " + " | ".join(cells) + " |"
        )
    if not lines:
        return ""
    header = "| bundle | " + " | ".join(f"{label} words" for label, _, _ in LENGTH_BUCKETS) + " |"
    return "\n".join([header, "|---" * (len(LENGTH_BUCKETS) + 1) + "|", *lines])


def render_variants(repo: Path) -> str:
    """fp16/int8 variants (bundles with training.variant): size and quality vs fp32."""
    lines = []
    for _, manifest in _bundles(repo):
        variant = manifest.training.get("variant")
        if not isinstance(variant, dict):
            continue
        agreement = variant["agreement"]
        change = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(variant["metric_change"].items()))
        lines.append(
            f"| {variant['source']} | {manifest.precision} | "
            f"{variant['source_size_bytes'] / 1e6:.1f} -> {variant['size_bytes'] / 1e6:.1f} MB | "
            f"{change} | {100 * agreement['greedy_identical']:.1f}% of {agreement['examples']} | "
            f"{agreement['max_abs_diff_log_probs']:.3g} |"
        )
    if not lines:
        return ""
    header = (
        "| source | precision | size | metric change vs fp32 | greedy identical to fp32 | "
        "max abs diff log-probs |"
    )
    return "\n".join([header, "|---|---|---|---|---|---|", *lines])


def render_ablation(paths: list[Path]) -> str:
    lines = []
    for path in paths:
        comparison = json.loads(path.read_text(encoding="utf-8"))
        att, none = comparison["attention"], comparison["no_attention"]
        metric = _headline(att["metrics"])
        lines.append(f"**{comparison['dataset']}** ({metric}, {comparison['examples']} examples)")
        lines.append("")
        buckets = [label for label, _, _ in LENGTH_BUCKETS if label in att["by_source_length"]]
        lines.append("| | all | " + " | ".join(f"{b} words" for b in buckets) + " |")
        lines.append("|---" * (len(buckets) + 2) + "|")
        for label, side in (("attention", att), ("no attention", none)):
            cells = [
                f"{side['by_source_length'].get(b, {}).get(metric, float('nan')):.2f}"
                for b in buckets
            ]
            lines.append(f"| {label} | {side['metrics'][metric]:.2f} | " + " | ".join(cells) + " |")
        gains = comparison["gain_by_source_length"]
        cells = [f"{gains.get(b, {}).get(metric, float('nan')):+.2f}" for b in buckets]
        lines.append(f"| gain | {comparison['gain'][metric]:+.2f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    repo = Path(args[0] if args else "models")
    print(render(repo))
    for extra in (render_by_length(repo), render_variants(repo)):
        if extra:
            print("\n" + extra)
    if len(args) > 1:
        print("\n" + render_ablation([Path(a) for a in args[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
