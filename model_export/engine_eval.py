"""Score a bundle through the engine's offline API -- what the server runs -- with extractive
decoding on or off, on the test split of a prepared folder (the training data's, or the
held-out records of a newer suite from `python -m model_export.data newer`).

Beside the task's metrics it reports, for answer models, the unseen-phrasing twins of the
same questions, the figures per asked field, and how many answers are a span of their
context. Sources longer than the model accepts are cut to its limit (EOS kept last), as the
build's evaluation does, and counted.
"""

from __future__ import annotations

from pathlib import Path

from model_export import data as prepared
from model_export import evaluate as ev
from model_export.bundle_eval import dataset_of, subset, trained, unseen_twins
from service.bundle import Task, read_manifest
from service.engine.offline import Seq2SeqEngine

LEAD_WORDS = 10  # summarize baseline: the source's first words


def _sources(engine: Seq2SeqEngine, task: Task, records: list[dict]) -> tuple[list, int]:
    """Token ids of each record's source within the model's limit; -> (ids, how many cut)."""
    limit = engine.manifest.max_source_length
    eos = engine.manifest.special_tokens.eos_id
    out, cut = [], 0
    for record in records:
        ids = list(engine.tokenizer.encode_plain(ev.source_text(task, record)))
        cut += len(ids) + 1 > limit
        out.append([*ids[: limit - 1], eos])
    return out, cut


def engine_predictions(
    engine: Seq2SeqEngine, records: list[dict], *, extractive: bool | None
) -> tuple[list[str], int]:
    """Greedy predictions ("" for "not in the context") -> (predictions, sources cut)."""
    task = engine.manifest.task
    sources, cut = _sources(engine, task, records)
    options: dict[str, object] = {} if task != "answer" else {"extractive": extractive}
    results = engine.generate_batch(sources, **options)
    return [r.best.text if r.answerable else "" for r in results], cut


def in_context(records: list[dict], predictions: list[str]) -> float:
    """Share (0-100) of the non-empty answers that occur verbatim in their context."""
    given = [(r, p) for r, p in zip(records, predictions, strict=True) if p]
    return round(100 * sum(p in r["context"] for r, p in given) / max(len(given), 1), 2)


def answer_figures(records: list[dict], predictions: list[str]) -> dict[str, object]:
    references = [ev.reference_text("answer", r) for r in records]
    fields: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        fields.setdefault(str(record.get("field", "?")), []).append(i)
    by_field = {
        field: {
            "count": len(idx),
            **ev.score("answer", [predictions[i] for i in idx], [references[i] for i in idx]),
        }
        for field, idx in sorted(fields.items())
    }
    return {
        "examples": len(records),
        "metrics": ev.score("answer", predictions, references),
        "in_context": in_context(records, predictions),
        "by_field": by_field,
        "baselines": {"always_unanswerable": ev.score("answer", [""] * len(records), references)},
    }


def score_with_engine(
    bundle_dir: Path,
    data_dir: Path,
    *,
    limit: int | None = 3000,
    seed: int = 1234,
    extractive: bool | None = None,
    threads: int = 2,
) -> dict[str, object]:
    """The figures of one bundle on `data_dir`'s test split, as a JSON-ready dict."""
    manifest = read_manifest(bundle_dir)
    records = prepared.load_split(data_dir, dataset_of(manifest), "test")
    scored = subset(trained(records), limit, seed)
    engine = Seq2SeqEngine(bundle_dir, intra_op_threads=threads, max_batch_size=64)
    report: dict[str, object] = {
        "bundle": f"{manifest.name}/{manifest.version}",
        "data": str(data_dir),
        "dataset_sha256": prepared.dataset_sha256(data_dir),
        "extractive": extractive,
        "max_source_length": manifest.max_source_length,
    }
    predictions, cut = engine_predictions(engine, scored, extractive=extractive)
    if manifest.task != "answer":
        references = [ev.reference_text(manifest.task, r) for r in scored]
        metrics = ev.score(manifest.task, predictions, references)
        report |= {"examples": len(scored), "sources_cut": cut, "metrics": metrics}
        if manifest.task == "summarize":  # the yardstick: the first ten words
            lead = [" ".join(r["source"].split()[:LEAD_WORDS]) for r in scored]
            lead_figures = ev.score(manifest.task, lead, references)
            report["baselines"] = {f"lead_{LEAD_WORDS}_words": lead_figures}
        return report
    report |= {"sources_cut": cut, "trained": answer_figures(scored, predictions)}
    twins = unseen_twins(records, scored)
    if twins:
        unseen, cut_unseen = engine_predictions(engine, twins, extractive=extractive)
        report |= {"unseen": answer_figures(twins, unseen), "unseen_sources_cut": cut_unseen}
    return report
