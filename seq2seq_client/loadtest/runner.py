"""The load itself: one asyncio loop, one channel to the target, calls through the client SDK.

    closed:   `concurrency` clients; each sends its next request when its last one answered.
    constant: one request every 1/rate seconds; poisson: exponential gaps of mean 1/rate.

Open-loop requests are sent at their intended times whatever the replies do, and at most
`max_in_flight` are outstanding: a request due while that many are is dropped and counted,
so an overloaded server cannot make the client grow without bound. Retries are off, so every
call the server sees is one the report counts. Talks to `target` only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from seq2seq_client.aio import AsyncSeq2SeqClient
from seq2seq_client.channel import TlsConfig
from seq2seq_client.errors import Seq2SeqError
from seq2seq_client.loadtest.mix import RPC_TASKS, Mix, MixEntry, missing_models
from seq2seq_client.loadtest.results import OK, Outcome, RunStats
from seq2seq_client.loadtest.schedule import MODES, Bounds, Phase, Phases, arrival_offsets
from seq2seq_client.tasks import TASKS
from seq2seq_client.types import AnswerResult, GenerateResult, ModelInfo

ProgressCallback = Callable[[RunStats, float], None]  # (stats so far, seconds since start)


@dataclass(frozen=True)
class LoadConfig:
    """One load run. Bounded by `duration` AND `max_requests`, each call by `deadline`."""

    target: str  # host:port or dns:///name:port; the only address the run talks to
    mode: str = "closed"  # "closed", "constant" or "poisson"
    concurrency: int = 8  # closed loop: clients, each with one call in flight
    connections: int = 1  # TCP connections, calls spread over them in turn
    rate: float = 0.0  # open loop: requests per second offered
    duration: float = 30.0  # seconds of the measured window at most
    max_requests: int = 1_000_000  # measured requests at most
    warmup_seconds: float = 0.0  # warm-up before the window, not in the figures
    warmup_requests: int = 0  # warm-up by count instead (wins when > 0)
    deadline: float = 30.0  # seconds, per call
    max_in_flight: int = 1000  # open loop: outstanding calls at most
    seed: int = 0  # Poisson arrivals: same seed, same schedule
    connect_timeout: float = 5.0  # seconds for the pre-flight ListModels
    token: str | None = None  # bearer token
    tls: TlsConfig | None = None  # None = plaintext

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.mode == "closed" and self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {self.concurrency}")
        if self.mode != "closed" and not self.rate > 0:
            raise ValueError(f"the {self.mode} mode needs a rate > 0 (requests per second)")
        if self.deadline <= 0 or self.connect_timeout <= 0:
            raise ValueError("deadline and connect timeout must be > 0 seconds")
        if self.connections < 1:
            raise ValueError(f"connections must be >= 1, not {self.connections}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, not {self.max_in_flight}")
        self.bounds()  # checks duration, max_requests and warm-up

    def bounds(self) -> Bounds:
        return Bounds(
            duration=self.duration,
            max_requests=self.max_requests,
            warmup_seconds=self.warmup_seconds,
            warmup_requests=self.warmup_requests,
        )


class PreflightError(Exception):
    """The target cannot take this load (unreachable, or lacks a model): nothing was sent."""


def open_client(config: LoadConfig, own_connection: bool = False) -> AsyncSeq2SeqClient:
    """A client without retries: one call sent = one call the server counts."""
    return AsyncSeq2SeqClient(
        config.target,
        tls=config.tls,
        token=config.token,
        timeout=config.deadline,
        retry=None,
        own_connection=own_connection,
    )


async def preflight(client: AsyncSeq2SeqClient, mix: Mix, timeout: float) -> list[ModelInfo]:
    """ListModels with a short deadline; every model the mix needs must be there."""
    try:
        models = await client.list_models(timeout=timeout)
    except Seq2SeqError as exc:
        raise PreflightError(
            f"cannot reach {client.target}: {exc.code.name}: {exc.details}"
        ) from None
    problems = missing_models(mix, models)
    if problems:
        raise PreflightError(
            f"{client.target} lacks what {mix.source} needs: {'; '.join(problems)}"
        )
    return models


# ---------------------------------------------------------------- one call per RPC


def send(client: AsyncSeq2SeqClient, entry: MixEntry, timeout: float) -> Awaitable[Any]:
    """One call of the entry's RPC, its fields read by the task table's names."""
    spec = TASKS[RPC_TASKS[entry.rpc]]
    fields = {name: getattr(entry, name) for name in spec.fields}
    return client.generate(spec.name, fields, options=entry.options, timeout=timeout)


class LoadRun:
    """One run over its clients (one per connection, used in turn): the schedule decides
    when, the mix what, RunStats keeps score."""

    def __init__(self, clients: list[AsyncSeq2SeqClient], config: LoadConfig, mix: Mix) -> None:
        self.clients = clients
        self.config = config
        self.entries = mix.entries
        self.order = mix.order()
        self.phases = Phases(config.bounds())
        self.stats = RunStats()
        self._sequence = itertools.count()
        self._turn = itertools.count()  # which connection the next call takes
        self._start = 0.0

    def _now(self) -> float:
        return time.perf_counter() - self._start

    def _next_entry(self) -> MixEntry:
        return self.entries[self.order[next(self._sequence) % len(self.order)]]

    async def run(self, progress: ProgressCallback | None = None, interval: float = 0.5) -> None:
        self._start = time.perf_counter()
        cpu_started = time.process_time()
        reporter = None
        if progress is not None:
            reporter = asyncio.create_task(self._report(progress, interval))
        try:
            if self.config.mode == "closed":
                await self._closed()
            else:
                await self._open()
        finally:
            if reporter is not None:
                reporter.cancel()
            self.stats.client_cpu_seconds = time.process_time() - cpu_started
        if progress is not None:
            progress(self.stats, self._now())

    async def _report(self, progress: ProgressCallback, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            progress(self.stats, self._now())

    async def _closed(self) -> None:
        async def client() -> None:
            while True:
                now = self._now()
                phase = self.phases.classify(now)
                if phase is Phase.DONE:
                    return
                self.stats.started(phase, now)
                await self._call(self._next_entry(), phase, now)

        await asyncio.gather(*(client() for _ in range(self.config.concurrency)))

    async def _open(self) -> None:
        c = self.config
        tasks: set[asyncio.Task[None]] = set()
        for n, offset in enumerate(arrival_offsets(c.mode, c.rate, c.seed)):
            phase = self.phases.classify(offset)
            if phase is Phase.DONE:
                break
            delay = offset - self._now()
            if delay > 0:
                await asyncio.sleep(delay)
            elif n % 16 == 0:
                await asyncio.sleep(0)  # behind schedule: let calls start and replies in
            entry = self._next_entry()
            if self.stats.in_flight >= c.max_in_flight:
                self.stats.drop(phase, offset)
                continue
            self.stats.started(phase, offset)  # counted in flight from now on
            task = asyncio.create_task(self._call(entry, phase, offset))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def _call(self, entry: MixEntry, phase: Phase, intended: float) -> None:
        sent = self._now()
        code, tokens, server_total, server_queue = OK, 0, None, None
        client = self.clients[next(self._turn) % len(self.clients)]
        try:
            result = await send(client, entry, self.config.deadline)
        except Seq2SeqError as exc:
            code = exc.code.name
        else:
            assert isinstance(result, GenerateResult | AnswerResult)
            tokens = len(result.hypotheses[0].target_tokens) if result.hypotheses else 0
            server_total, server_queue = result.timing.total_seconds, result.timing.queue_seconds
        self.stats.record(
            Outcome(
                rpc=entry.rpc,
                phase=phase,
                intended=intended,
                sent=sent,
                finished=self._now(),
                code=code,
                output_tokens=tokens,
                server_total=server_total,
                server_queue=server_queue,
            )
        )


async def load_test(
    config: LoadConfig, mix: Mix, progress: ProgressCallback | None = None
) -> tuple[RunStats, list[ModelInfo]]:
    """Pre-flight (PreflightError: nothing sent), then the load; the stats and the models."""
    separate = config.connections > 1
    clients = [open_client(config, own_connection=separate) for _ in range(config.connections)]
    try:
        models = await preflight(clients[0], mix, config.connect_timeout)
        run = LoadRun(clients, config, mix)
        await run.run(progress)
        return run.stats, models
    finally:
        await asyncio.gather(*(c.close() for c in clients))
