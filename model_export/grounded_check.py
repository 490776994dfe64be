"""The grounding check through a RUNNING server: held-out answer records (by default the
newer suite's packages, which no split contains) asked with the trained AND the unseen
everyday phrasings, as real Answer RPCs with the server's defaults (extractive decoding on
for answer models). Every answer must be a substring of its context; the figures are scored
by the same code as the offline `score` command, so the two compare.

    seq2seq-export verify-grounded models/answer-en/2 --data data/newer --limit 2000
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from model_export import data as prepared
from model_export.bundle_eval import dataset_of, subset, trained, unseen_twins
from model_export.engine_eval import answer_figures
from model_export.served_eval import served_predictions
from service.bundle import read_manifest


def outside_context(records: list[dict], predictions: list[str]) -> list[dict]:
    """The records whose (non-empty) answer is not a substring of their context."""
    return [
        {"id": r["id"], "question": r["question"], "answer": p}
        for r, p in zip(records, predictions, strict=True)
        if p and p not in r["context"]
    ]


def check_grounded(
    target: str, bundle_dir: Path, data_dir: Path, *, limit: int | None = 2000, seed: int = 1234
) -> dict[str, object]:
    """Figures of the server's answers for `limit` held-out questions and their unseen twins,
    with every answer that is not in its context listed (the check fails on any)."""
    manifest = read_manifest(bundle_dir)
    if manifest.task != "answer":
        raise ValueError(f"{bundle_dir}: verify-grounded checks answer models, not {manifest.task}")
    records = prepared.load_split(data_dir, dataset_of(manifest), "test")
    asked = subset(trained(records), limit, seed)
    twins = unseen_twins(records, asked)
    report: dict[str, object] = {
        "bundle": f"{manifest.name}/{manifest.version}",
        "data": str(data_dir),
        "dataset_sha256": prepared.dataset_sha256(data_dir),
        "served_by": target,
    }
    outside: list[dict] = []
    for label, group in (("trained", asked), ("unseen", twins)):
        if not group:
            continue
        predictions = asyncio.run(served_predictions(target, manifest, group))
        report[label] = answer_figures(group, predictions)
        outside += outside_context(group, predictions)
    report["answers_outside_context"] = outside
    return report
