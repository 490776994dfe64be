"""A load generator that runs in its OWN process, so it never shares the server's event loop.

`run_load(spec)` is a top-level function: the suite submits it to a spawn-context process
pool and awaits the result. Two modes over the Translate RPC on a loopback port:
  closed: `concurrency` clients, each sends its next request when the last one answered;
  open:   Poisson arrivals at `rate` per second, each request sent at its intended time and
          its latency measured FROM that intended time (wrk2's method: no coordinated
          omission when the client or the server falls behind).
Bounded in time (`seconds`) and count (`max_requests`); warm-up requests are not counted.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LoadSpec:
    target: str  # host:port, loopback only
    mode: str  # "closed" | "open"
    items: tuple[tuple[str, int], ...]  # (text, max_output_tokens; 0 = the model's limit), cycled
    seconds: float  # measured window at most
    max_requests: int  # measured requests at most
    concurrency: int = 1  # closed loop: clients in flight
    rate: float = 0.0  # open loop: mean arrivals per second
    warmup_requests: int = 0  # sent (closed loop, same concurrency) before measuring
    seed: int = 0
    timeout: float = 60.0  # per-call deadline, seconds
    languages: tuple[str, str] = field(default=("en", "fr"))


def percentiles(latencies: list[float], prefix: str = "") -> dict[str, float | None]:
    """p50/p90/p99/max in milliseconds (None when nothing was measured)."""
    names = [f"{prefix}{n}_ms" for n in ("p50", "p90", "p99", "max")]
    if not latencies:
        return dict.fromkeys(names)
    values = np.asarray(latencies) * 1000.0
    figures = [*np.percentile(values, [50, 90, 99]), values.max()]
    return {name: round(float(v), 3) for name, v in zip(names, figures, strict=True)}


async def _load(spec: LoadSpec) -> dict[str, Any]:
    import grpc

    from service.api.gen.seq2seq.v1 import seq2seq_pb2 as pb
    from service.api.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc

    host = spec.target.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        raise ValueError(f"loopback targets only, not {spec.target}")
    requests = [
        pb.TranslateRequest(
            text=text,
            source_language=spec.languages[0],
            target_language=spec.languages[1],
            options=pb.DecodingOptions(max_output_tokens=max_tokens),
        )
        for text, max_tokens in spec.items
    ]
    latencies: list[float] = []
    server_total: list[float] = []  # the server's own arrival -> response, per request
    server_queue: list[float] = []  # the server's arrival -> joining the decode batch
    tokens = 0
    errors: dict[str, int] = {}

    async with grpc.aio.insecure_channel(spec.target) as channel:
        stub = pb_grpc.Seq2SeqStub(channel)

        async def call(index: int, started: float, record: bool) -> None:
            nonlocal tokens
            try:
                response = await stub.Translate(
                    requests[index % len(requests)], timeout=spec.timeout
                )
            except grpc.aio.AioRpcError as exc:
                if record:
                    errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                return
            if record:
                latencies.append(time.perf_counter() - started)
                server_total.append(response.timing.total_seconds)
                server_queue.append(response.timing.queue_seconds)
                tokens += len(response.hypotheses[0].target_tokens)

        async def closed_loop(count: int, stop_at: float, record: bool) -> None:
            issued = 0

            async def client() -> None:
                nonlocal issued
                while issued < count and time.perf_counter() < stop_at:
                    index = issued
                    issued += 1
                    await call(index, time.perf_counter(), record)

            await asyncio.gather(*(client() for _ in range(spec.concurrency)))

        if spec.warmup_requests:
            await closed_loop(spec.warmup_requests, time.perf_counter() + spec.seconds, False)
        started = time.perf_counter()
        cpu_started = time.process_time()
        stop_at = started + spec.seconds
        if spec.mode == "closed":
            await closed_loop(spec.max_requests, stop_at, True)
        elif spec.mode == "open":
            rng = random.Random(spec.seed)
            tasks = []
            intended = started
            for index in range(spec.max_requests):
                intended += rng.expovariate(spec.rate)
                if intended >= stop_at:
                    break
                delay = intended - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(call(index, intended, True)))
            await asyncio.gather(*tasks)
        else:
            raise ValueError(f"unknown load mode {spec.mode!r}")
        elapsed = time.perf_counter() - started
    done = len(latencies)
    return {
        "mode": spec.mode,
        "concurrency": spec.concurrency if spec.mode == "closed" else None,
        "offered_rate": spec.rate if spec.mode == "open" else None,
        "seconds": round(elapsed, 3),
        "requests": done,
        "output_tokens": tokens,
        "requests_per_second": round(done / elapsed, 2),
        "tokens_per_second": round(tokens / elapsed, 1),
        "errors": errors,
        "client_cpu_seconds": round(time.process_time() - cpu_started, 3),
        **percentiles(latencies),
        **percentiles(server_total, "server_total_"),
        **percentiles(server_queue, "server_queue_"),
    }


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Entry point in the client process: one asyncio loop for the whole load."""
    return asyncio.run(_load(spec))
