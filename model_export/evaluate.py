"""Test-split metrics for each task, beside trivial baselines, as `service.bundle.Evaluation`
fields.

translate -> BLEU, chrF (sacrebleu); summarize -> ROUGE-1/2/L F1 (rouge-score);
answer -> exact match and token F1 (SQuAD normalisation; "" is the unanswerable answer), and
answerability: precision and recall of "not in the context" (the prediction "") against the
unanswerable references.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from statistics import mean

import sacrebleu
from rouge_score import rouge_scorer

from service.bundle import NO_ANSWER_TOKEN, Task, answer_source_text

# src id lists -> output id lists (EOS included or not); the model under test.
DecodeFn = Callable[[list[list[int]]], list[list[int]]]


def source_text(task: Task, record: dict) -> str:
    if task == "answer":
        return answer_source_text(record["question"], record["context"])
    return record["source"]


def target_text(task: Task, record: dict) -> str:
    """The training target; an unanswerable question's target is the single <noans> token."""
    if task == "answer":
        return record["answer"] if record["answerable"] else NO_ANSWER_TOKEN
    return record["target"]


def reference_text(task: Task, record: dict) -> str:
    """What a prediction is scored against: the answer, or "" when not answerable."""
    if task == "answer":
        return record["answer"] if record["answerable"] else ""
    return record["target"]


def _normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _token_f1(prediction: str, reference: str) -> float:
    pred, ref = _normalize_answer(prediction).split(), _normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def score(task: Task, predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus metrics, each on a 0-100 scale."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {}
    if task == "translate":
        return {
            "bleu": round(sacrebleu.corpus_bleu(predictions, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(predictions, [references]).score, 2),
        }
    if task == "summarize":
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        per = [scorer.score(ref, pred) for pred, ref in zip(predictions, references, strict=True)]
        return {
            k: round(100 * mean(s[k].fmeasure for s in per), 2)
            for k in ("rouge1", "rouge2", "rougeL")
        }
    exact = [
        float(_normalize_answer(p) == _normalize_answer(r))
        for p, r in zip(predictions, references, strict=True)
    ]
    f1 = [_token_f1(p, r) for p, r in zip(predictions, references, strict=True)]
    return {
        "exact_match": round(100 * mean(exact), 2),
        "f1": round(100 * mean(f1), 2),
        **answerability(predictions, references),
    }


def answerability(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Precision and recall (0-100) of saying "not in the context"; 0 where undefined."""
    said = [not _normalize_answer(p) for p in predictions]
    truth = [not r for r in references]
    hits = sum(s and t for s, t in zip(said, truth, strict=True))
    return {
        "noans_precision": round(100 * hits / max(sum(said), 1), 2),
        "noans_recall": round(100 * hits / max(sum(truth), 1), 2),
    }


def phrasing(record: dict) -> str:
    """An answer record's question wording: "trained" or "unseen" (only in test records)."""
    return str(record.get("phrasing", "trained"))


def baselines(task: Task, train: list[dict], test: list[dict]) -> dict[str, dict[str, float]]:
    """Trivial baselines on the test split."""
    refs = [reference_text(task, r) for r in test]
    if task == "translate":
        return {"copy_source": score(task, [r["source"] for r in test], refs)}
    if task == "summarize":
        n = max(1, round(mean(len(r["target"].split()) for r in train)))
        lead = [" ".join(r["source"].split()[:n]) for r in test]
        return {f"lead_{n}_words": score(task, lead, refs)}
    counts = Counter(reference_text(task, r) for r in train)
    frequent_answerable = Counter(r["answer"] for r in train if r["answerable"])
    out = {
        "always_unanswerable": score(task, [""] * len(test), refs),
        "most_frequent_answer": score(task, [counts.most_common(1)[0][0]] * len(test), refs),
    }
    if frequent_answerable:
        top = frequent_answerable.most_common(1)[0][0]
        out["most_frequent_answerable_answer"] = score(task, [top] * len(test), refs)
    return out


def predictions_text(
    task: Task, outputs: list[list[int]], *, decode: Callable[[list[int]], str], no_answer_id: int
) -> list[str]:
    """Detokenize; an answer that starts with <noans> is the unanswerable answer ""."""
    if task == "answer":
        return ["" if ids[:1] == [no_answer_id] else decode(ids) for ids in outputs]
    return [decode(ids) for ids in outputs]


def decode_all(
    sources: list[list[int]], decode_fn: DecodeFn, *, batch_size: int = 64
) -> list[list[int]]:
    """Decode in length-sorted batches (less padding); results come back in input order."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[list[int]] = [[] for _ in sources]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        for i, ids in zip(idx, decode_fn([sources[i] for i in idx]), strict=True):
            out[i] = ids
    return out
