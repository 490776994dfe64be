"""Offline engine throughput: the ModelEngine driven synchronously, no gRPC in the way."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from service.engine.engine import ModelEngine
from service.engine.scheduler import Scheduler, SchedulerConfig

from service.bundle import answer_source_text
from service.engine.repository import LoadedBundle
from service.engine.requests import DecodeParams, GenerationOutput, Request, TokenEvent
from service.errors import ServiceError

HELDOUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "heldout"


class NullObserver:
    """An EngineObserver that records nothing (benchmarks time the whole run instead)."""

    def encoder_batch(self, size: int, seconds: float, tokens: int) -> None: ...
    def decoder_step(self, size: int, seconds: float) -> None: ...
    def request_admitted(self, queue_seconds: float) -> None: ...
    def request_finished(self, status: object, output_tokens: int) -> None: ...
    def queue_depth(self, waiting: int, running: int) -> None: ...
    def queue_changed(self, waiting: int) -> None: ...
    def model_failure(self) -> None: ...


class CollectingListener:
    """A RequestListener that keeps what the engine delivers (benchmarks and tests)."""

    def __init__(self) -> None:
        self.tokens: list[TokenEvent] = []
        self.output: GenerationOutput | None = None
        self.error: ServiceError | None = None
        self.done = threading.Event()

    def on_token(self, event: TokenEvent) -> None:
        self.tokens.append(event)

    def on_finish(self, output: GenerationOutput) -> None:
        self.output = output
        self.done.set()

    def on_error(self, error: ServiceError) -> None:
        self.error = error
        self.done.set()


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
    bundle: LoadedBundle, sources: list[str], *, batch_size: int, requests: int
) -> ThroughputResult:
    """Decode `requests` sources (cycled) greedily at `batch_size`; time the whole run."""
    scheduler = Scheduler(
        SchedulerConfig(max_batch_size=batch_size, max_queue_size=requests, max_queue_delay=0.0)
    )
    engine = ModelEngine(bundle.runtime, scheduler, NullObserver())
    limit = bundle.manifest.max_source_length
    encoded = []
    for source in sources:
        ids = bundle.tokenizer.encode(source, max_tokens=10**6, field="text").ids
        if len(ids) > limit:  # keep the head of a long source, and its EOS
            ids = ids[: limit - 1] + ids[-1:]
        encoded.append(np.asarray(ids, dtype=np.int64))
    listeners = [CollectingListener() for _ in range(requests)]
    started = time.perf_counter()
    for i, listener in enumerate(listeners):
        scheduler.submit(
            Request(
                request_id=str(i),
                source_ids=encoded[i % len(encoded)],
                params=DecodeParams(max_output_tokens=bundle.manifest.max_target_length),
                listener=listener,
            )
        )
    while scheduler.queue_depth or engine.num_running:
        engine.step()
    seconds = time.perf_counter() - started
    failed = [listener.error for listener in listeners if listener.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} requests failed: {failed[0]}")
    tokens = sum(len(listener.output.token_ids) for listener in listeners if listener.output)
    return ThroughputResult(batch_size, requests, seconds, tokens)
