"""Does attention help? The same recipe trained with and without attention, scored side by side.

Both bundles are re-scored on the same test records, overall and by source length (the seed
document's claim is that attention matters most on long sources). The comparison is written as
JSON and folded into the attention bundle's bundle.json: its evaluation gains the baseline
`same_model_without_attention` and its by-source-length table.
"""

from __future__ import annotations

import json
from pathlib import Path

from model_export import bundle_eval
from service.bundle import BundleManifest, read_manifest

NO_ATTENTION_BASELINE = "same_model_without_attention"


class AblationError(ValueError):
    """The two bundles are not the same recipe with and without attention."""


def _check_pair(with_attention: BundleManifest, without: BundleManifest) -> None:
    problems = []
    if with_attention.attention.kind == "none":
        problems.append(f"{with_attention.name}/{with_attention.version} has no attention")
    if without.attention.kind != "none":
        problems.append(f"{without.name}/{without.version} has attention {without.attention.kind}")
    for field in ("task", "languages", "architecture", "cell", "hidden_size", "vocab_size"):
        mine, theirs = getattr(with_attention, field), getattr(without, field)
        if mine != theirs:
            problems.append(f"{field} differs: {mine!r} vs {theirs!r}")
    if problems:
        raise AblationError("not an attention/no-attention pair: " + "; ".join(problems))


def compare_attention(
    with_dir: Path, without_dir: Path, data_dir: Path, *, threads: int = 2
) -> dict[str, object]:
    """Score both bundles on the attention bundle's test records; return the comparison."""
    with_manifest, without_manifest = read_manifest(with_dir), read_manifest(without_dir)
    _check_pair(with_manifest, without_manifest)
    records = bundle_eval.scored_records(data_dir, with_manifest)
    scores = {}
    for label, bundle_dir, manifest in (
        ("attention", with_dir, with_manifest),
        ("no_attention", without_dir, without_manifest),
    ):
        predictions = bundle_eval.greedy_predictions(
            bundle_dir, bundle_eval.DecodeSpec.of(manifest), records, threads=threads
        )
        scores[label] = bundle_eval.score_predictions(manifest.task, records, predictions)
    att, none = scores["attention"], scores["no_attention"]
    return {
        "task": with_manifest.task,
        "dataset": bundle_eval.dataset_of(with_manifest),
        "examples": len(records),
        "attention": {
            "bundle": f"{with_dir}",
            "spec": with_manifest.attention.model_dump(),
            "training": with_manifest.training.get("run"),
            "metrics": att.metrics,
            "by_source_length": att.by_source_length,
        },
        "no_attention": {
            "bundle": f"{without_dir}",
            "training": without_manifest.training.get("run"),
            "metrics": none.metrics,
            "by_source_length": none.by_source_length,
        },
        "gain": {k: round(v - none.metrics[k], 2) for k, v in att.metrics.items()},
        "gain_by_source_length": {
            bucket: {
                k: round(v - none.by_source_length[bucket][k], 2)
                for k, v in metrics.items()
                if k != "count"
            }
            for bucket, metrics in att.by_source_length.items()
            if bucket in none.by_source_length
        },
    }


def record_in_bundle(with_dir: Path, comparison: dict[str, object]) -> BundleManifest:
    """Write the no-attention figures and the by-length table into the bundle's evaluation."""
    manifest = read_manifest(with_dir)
    if manifest.evaluation is None:
        raise AblationError(f"{with_dir}: has no evaluation to extend")
    att, none = comparison["attention"], comparison["no_attention"]
    assert isinstance(att, dict) and isinstance(none, dict)
    return bundle_eval.update_evaluation(
        with_dir,
        baselines=manifest.evaluation.baselines | {NO_ATTENTION_BASELINE: none["metrics"]},
        by_source_length=att["by_source_length"],
    )


def write_report(path: Path, comparison: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(comparison, indent=2, sort_keys=True) + "\n", encoding="utf-8")
