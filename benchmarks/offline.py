"""Offline engine throughput through the public offline API, no gRPC in the way."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from service.bundle import answer_source_text
from service.engine.offline import Seq2SeqEngine
from service.engine.repository import LoadedBundle

HELDOUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "heldout"


def heldout_sources(task: str, dataset: str) -> list[str]:
    """Real held-out inputs for a task, as the model's source text."""
    records = [json.loads(line) for line in (HELDOUT / f"{dataset}.jsonl").open()]
    if task == "answer":
        return [answer_source_text(r["question"], r["context"]) for r in records]
    return [r["source"] for r in records]


@dataclass(frozen=True)
class ThroughputResult:
    batch_size: int
    requests: int
    seconds: float
    output_tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.seconds

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    def as_dict(self) -> dict[str, float | int]:
        return {
            "batch_size": self.batch_size,
            "requests": self.requests,
            "seconds": round(self.seconds, 4),
            "output_tokens": self.output_tokens,
            "tokens_per_second": round(self.tokens_per_second, 1),
            "requests_per_second": round(self.requests_per_second, 2),
        }


def offline_throughput(
    bundle: LoadedBundle,
    sources: list[str],
    *,
    batch_size: int,
    requests: int,
    **options: object,
) -> ThroughputResult:
    """Decode `requests` sources (cycled) through the offline API at `batch_size` (greedy
    unless `options` say otherwise); time the whole run."""
    engine = Seq2SeqEngine.from_bundle(bundle, max_batch_size=batch_size)
    limit = bundle.manifest.max_source_length
    encoded = []
    for source in sources:
        ids = bundle.tokenizer.encode(source, max_tokens=10**6, field="text").ids
        if len(ids) > limit:  # keep the head of a long source, and its EOS
            ids = ids[: limit - 1] + ids[-1:]
        encoded.append(ids)
    batch = [encoded[i % len(encoded)] for i in range(requests)]
    started = time.perf_counter()
    results = engine.generate_batch(batch, **options)
    seconds = time.perf_counter() - started
    tokens = sum(len(r.best.token_ids) for r in results)
    return ThroughputResult(batch_size, requests, seconds, tokens)
