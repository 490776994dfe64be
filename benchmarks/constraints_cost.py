"""What constraints cost per decoder step, and that requests without them pay nothing.

    python -m benchmarks.constraints_cost OUT.json [--rounds 5] [--requests 256]

Offline API, 2 threads, interleaved rounds, medians. (a) The answer model on held-out
questions at batch 32 with extractive decoding off and on: wall time per step and the
Python time per step beside onnxruntime's. (b) translate-en-fr at batch 32, greedy, with
no constraint anywhere vs with one protected-term request in every batch of 32 (the other
31 rows are unconstrained): the unconstrained rows' throughput.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.offline import heldout_sources
from benchmarks.protected_terms import technical_terms
from benchmarks.report import environment, print_table, write_json
from service.engine.constraint_builder import build_constraints
from service.engine.core import EngineCore
from service.engine.offline import Seq2SeqEngine
from service.engine.policy import PolicyConfig, make_policy
from service.engine.queue import RequestQueue
from service.engine.requests import Request, RequestStatus
from service.params import DecodingParams
from service.settings import DEFAULT_MODEL_REPOSITORY


class StepTimer:
    """An EngineObserver that sums onnxruntime time and counts decoder steps."""

    def __init__(self) -> None:
        self.steps = 0
        self.ort_seconds = 0.0

    def decoder_step(self, size: int, seconds: float) -> None:
        self.steps += 1
        self.ort_seconds += seconds

    def encoder_batch(self, size: int, seconds: float, tokens: int) -> None:
        self.ort_seconds += seconds

    def queue_changed(self, waiting: int) -> None: ...

    def request_admitted(self, queue_seconds: float) -> None: ...

    def request_finished(self, status: RequestStatus, output_tokens: int) -> None: ...

    def queue_depth(self, waiting: int, running: int) -> None: ...

    def model_failure(self) -> None: ...


def timed(bundle: Path, sources: list, **options: object) -> dict[str, float]:
    timer = StepTimer()
    engine = Seq2SeqEngine(bundle, intra_op_threads=2, max_batch_size=32, observer=timer)
    started = time.perf_counter()
    results = engine.generate_batch(sources, **options)
    wall = time.perf_counter() - started
    tokens = sum(len(r.best.token_ids) for r in results)
    return {
        "wall_ms_per_step": 1000 * wall / timer.steps,
        "python_ms_per_step": 1000 * (wall - timer.ort_seconds) / timer.steps,
        "tokens_per_second": tokens / wall,
    }


def mixed(bundle: Path, texts: list[str], every: int) -> dict[str, float]:
    """Greedy at batch 32 through the engine core, one request in `every` carrying a
    protected term (every=0: none): what the unconstrained rows pay per step."""
    timer = StepTimer()
    engine = Seq2SeqEngine(bundle, intra_op_threads=2, max_batch_size=32)
    core = EngineCore(
        engine.bundle.runtime,
        make_policy("continuous", PolicyConfig(32, 0.0)),
        RequestQueue(len(texts)),
        timer,  # type: ignore[arg-type]
    )
    params = DecodingParams().for_model(engine.limits)
    for i, text in enumerate(texts):
        terms = technical_terms(text) if every and i % every == 0 else []
        ids = np.asarray(engine.encode(text), np.int64)
        guarded = DecodingParams(protected_terms=tuple(terms)).for_model(engine.limits)
        built = build_constraints(
            guarded,
            source_ids=ids,
            source_text=text,
            tokenizer=engine.tokenizer,
            manifest=engine.manifest,
        )
        core.submit(
            Request(
                request_id=str(i),
                source_ids=ids,
                params=guarded if terms else params,
                listener=_Ignore(),
                constraints=built.constraints,
                terms=built.terms,
            )
        )
    started = time.perf_counter()
    while core.has_work:
        core.step()
    wall = time.perf_counter() - started
    return {
        "wall_ms_per_step": 1000 * wall / timer.steps,
        "python_ms_per_step": 1000 * (wall - timer.ort_seconds) / timer.steps,
    }


class _Ignore:
    def on_token(self, event: object) -> None: ...

    def on_finish(self, output: object) -> None: ...

    def on_error(self, error: object) -> None: ...


def newest(model: Path) -> Path:
    """A model's newest version folder in the repository."""
    return max((p for p in model.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=256)
    args = parser.parse_args(argv)
    answer, translate = (newest(args.models / name) for name in ("answer-en", "translate-en-fr"))
    questions = heldout_sources("answer", "answer")
    questions = (questions * (args.requests // len(questions) + 1))[: args.requests]
    with_terms = [t for t in heldout_sources("translate", "translate-en-fr") if technical_terms(t)]
    plain = heldout_sources("translate", "translate-en-fr")
    texts = [
        with_terms[i % len(with_terms)] if i % 32 == 0 else plain[i % len(plain)]
        for i in range(args.requests)
    ]
    texts = [t for t in texts if len(t) < 300]
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):  # interleaved: each variant once per round
        for name, run in (
            ("answer, extractive off", lambda: timed(answer, questions, extractive=False)),
            ("answer, extractive on", lambda: timed(answer, questions, extractive=True)),
            ("translate, no constraints", lambda: mixed(translate, texts, every=0)),
            ("translate, 1 in 32 with a protected term", lambda: mixed(translate, texts, 32)),
        ):
            runs.setdefault(name, []).append(run())
    rows = []
    for name, samples in runs.items():
        medians = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
        rows.append({"variant": name, **{k: round(v, 3) for k, v in medians.items()}})
    header = ["variant", "wall_ms_per_step", "python_ms_per_step"]
    print_table(header, [[r[k] for k in header] for r in rows])
    write_json(args.out, {"environment": environment(), "rounds": args.rounds, "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
