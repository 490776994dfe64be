"""Test-split figures of a bundle, from its exported files alone.

The same code scores a bundle at build time, re-scores it later (`seq2seq-export evaluate`),
scores its fp16/int8 variants and its no-attention twin, and scores the predictions a running
server returned (`seq2seq-export verify-served`), so every figure in bundle.json and in the
docs is computed one way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from model_export import data as prepared
from model_export import evaluate as ev
from model_export.ort_model import OrtSeq2Seq
from model_export.tokenizer import decode, encode_batch, load_tokenizer
from service.bundle import (
    TOKENIZER_FILE,
    BundleManifest,
    SpecialTokens,
    Task,
    read_manifest,
    write_manifest,
)

# Source-length buckets in whitespace words: (label, lowest, highest or None).
LENGTH_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-5", 1, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21-40", 21, 40),
    ("41+", 41, None),
)


def subset(records: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A reproducible random subset (in file order) of at most `limit` records."""
    if limit is None or len(records) <= limit:
        return records
    picked = random.Random(seed).sample(range(len(records)), limit)
    return [records[i] for i in sorted(picked)]


def dataset_of(manifest: BundleManifest) -> str:
    if manifest.task == "translate" and manifest.languages is not None:
        return f"translate-{manifest.languages.source}-{manifest.languages.target}"
    return manifest.task


def trained(records: list[dict]) -> list[dict]:
    """The records a bundle's test figures are computed on: the trained phrasings (the
    unseen-phrasing twins of answer test records are scored apart, `unseen_twins`)."""
    return [r for r in records if ev.phrasing(r) == "trained"]


def unseen_twins(records: list[dict], scored: list[dict]) -> list[dict]:
    """The unseen-phrasing records that ask the questions of `scored` (same package and
    field, so the same context and answer), in `records` order."""
    asked = {(r["id"], r.get("field")) for r in scored}
    return [r for r in records if ev.phrasing(r) == "unseen" and (r["id"], r.get("field")) in asked]


def scored_records(data_dir: Path, manifest: BundleManifest) -> list[dict]:
    """The exact test records the bundle's evaluation was computed on (same subset, seed)."""
    records = trained(prepared.load_split(data_dir, dataset_of(manifest), "test"))
    evaluation = manifest.evaluation
    limit = None if evaluation is None else evaluation.num_examples
    if limit is not None and limit >= len(records):
        limit = None
    train_config = manifest.training.get("train_config", {})
    seed = int(train_config.get("seed", 1234)) if isinstance(train_config, dict) else 1234
    return subset(records, limit, seed)


def source_words(task: Task, record: dict) -> int:
    """Source length in whitespace words (answer: the context's length)."""
    text = record["context"] if task == "answer" else record["source"]
    return len(text.split())


def bucket_of(words: int) -> str:
    for label, low, high in LENGTH_BUCKETS:
        if words >= low and (high is None or words <= high):
            return label
    return LENGTH_BUCKETS[0][0]  # an empty source counts with the shortest


def by_source_length(
    task: Task, records: list[dict], predictions: list[str]
) -> dict[str, dict[str, float]]:
    """The task's metrics per source-length bucket, each with its example `count`."""
    groups: dict[str, list[int]] = {label: [] for label, _, _ in LENGTH_BUCKETS}
    for i, record in enumerate(records):
        groups[bucket_of(source_words(task, record))].append(i)
    out: dict[str, dict[str, float]] = {}
    for label, idx in groups.items():
        if not idx:
            continue
        refs = [ev.reference_text(task, records[i]) for i in idx]
        metrics = ev.score(task, [predictions[i] for i in idx], refs)
        out[label] = {"count": float(len(idx)), **metrics}
    return out


@dataclass(frozen=True)
class Scores:
    predictions: list[str]  # one per record, in record order
    metrics: dict[str, float]  # corpus metrics, 0-100
    by_source_length: dict[str, dict[str, float]]  # bucket -> metrics and count


def score_predictions(task: Task, records: list[dict], predictions: list[str]) -> Scores:
    references = [ev.reference_text(task, r) for r in records]
    return Scores(
        predictions=predictions,
        metrics=ev.score(task, predictions, references),
        by_source_length=by_source_length(task, records, predictions),
    )


@dataclass(frozen=True)
class DecodeSpec:
    """What greedy decoding of a bundle needs from its manifest."""

    task: Task
    special: SpecialTokens
    max_source_length: int  # tokens incl. EOS
    max_target_length: int  # tokens incl. EOS

    @classmethod
    def of(cls, manifest: BundleManifest) -> DecodeSpec:
        return cls(
            task=manifest.task,
            special=manifest.special_tokens,
            max_source_length=manifest.max_source_length,
            max_target_length=manifest.max_target_length,
        )


def greedy_predictions(
    bundle_dir: Path, spec: DecodeSpec, records: list[dict], *, threads: int = 2
) -> list[str]:
    """Greedy-decode `records` with onnxruntime (CPU provider) and detokenize."""
    tok = load_tokenizer(bundle_dir / TOKENIZER_FILE)
    special = spec.special
    sources = encode_batch(
        tok,
        [ev.source_text(spec.task, r) for r in records],
        max_length=spec.max_source_length,
    )
    session = OrtSeq2Seq(bundle_dir, threads=threads)
    outputs = ev.decode_all(
        sources,
        lambda batch: session.greedy(
            batch,
            max_length=spec.max_target_length,
            pad_id=special.pad_id,
            bos_id=special.bos_id,
            eos_id=special.eos_id,
        ),
    )
    return ev.predictions_text(
        spec.task,
        outputs,
        decode=lambda ids: decode(tok, ids),
        no_answer_id=-1 if special.no_answer_id is None else special.no_answer_id,
    )


def score_bundle(bundle_dir: Path, data_dir: Path, *, threads: int = 2) -> Scores:
    """Re-score a bundle on the test records its bundle.json was scored on."""
    manifest = read_manifest(bundle_dir)
    records = scored_records(data_dir, manifest)
    predictions = greedy_predictions(bundle_dir, DecodeSpec.of(manifest), records, threads=threads)
    return score_predictions(manifest.task, records, predictions)


def update_evaluation(bundle_dir: Path, **changes: object) -> BundleManifest:
    """Rewrite bundle.json with `changes` to its evaluation (the model files, and so their
    checksums, are untouched)."""
    manifest = read_manifest(bundle_dir)
    if manifest.evaluation is None:
        raise ValueError(f"{bundle_dir}: bundle.json has no evaluation to update")
    evaluation = manifest.evaluation.model_copy(update=changes)
    fields = manifest.model_dump(exclude={"files"}) | {"evaluation": evaluation.model_dump()}
    return write_manifest(bundle_dir, fields)


@dataclass(frozen=True)
class Agreement:
    """How closely a variant follows its source on the same inputs (onnxruntime, CPU)."""

    examples: int  # test sources compared
    max_abs_diff_log_probs: float  # over the first decoder steps, teacher-forced
    greedy_identical: float  # fraction of greedy outputs identical to the source's
