"""The batching policy: one object owns admission, reserved rows, the idle wait and
retirement (vLLM v1's scheduler shape: `schedule(waiting, now)` -> a `ScheduledBatch`,
`update(finished)` after each step).

Rows: a running request RESERVES `params.rows` batch rows (its beam) from admission on, even
while a beam still occupies one row before its first step, so a batch never outgrows
`max_batch_size`. `rows_reserved` counts them; `free_rows` is what is left.

Admission (both policies): waiting requests are taken in arrival order, first fit: a
request that needs more rows than are free is passed over, and later requests that fit are
admitted (no head-of-line blocking of greedy requests by a large beam). Fairness: once a
passed-over request has waited `max_bypass_delay` seconds, nothing behind it is admitted
until it fits (the running rows drain as requests finish), so a large beam is never
starved. Abandoned requests (cancelled, deadline passed) leave the queue before they cost
an encoder run, and running ones leave at the next step boundary (retirement).

Idle wait: with nothing running, wait up to `max_queue_delay` after the oldest arrival for
a fuller first batch (dynamic batching), unless the waiting requests already fill the
batch. Continuous batching admits at every step boundary; static batching admits only into
an empty batch (for comparison).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from service.engine.requests import Request, RequestStatus


@dataclass(frozen=True)
class PolicyConfig:
    max_batch_size: int  # most rows decoded together
    max_queue_delay: float  # seconds an idle model waits for a fuller first batch
    max_bypass_delay: float = 0.05  # seconds a passed-over request waits before it blocks others


@dataclass(frozen=True)
class ScheduledBatch:
    admitted: tuple[Request, ...] = ()  # join the running batch now, sorted by source length
    dropped: tuple[tuple[Request, RequestStatus], ...] = ()  # left the queue unrun: why
    retired: tuple[tuple[Request, RequestStatus], ...] = ()  # running ones that leave now

    @property
    def taken(self) -> tuple[Request, ...]:
        """Requests that leave the waiting queue."""
        return (*self.admitted, *(r for r, _ in self.dropped))


class BatchingPolicy:
    """Continuous (iteration-level) batching; `StaticBatching` overrides one rule."""

    name = "continuous"

    def __init__(self, config: PolicyConfig, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self._clock = clock
        self._running: dict[int, Request] = {}  # id(request) -> request, admission order
        self._rows_reserved = 0

    # --- what the engine and metrics read ------------------------------------------------
    @property
    def running_requests(self) -> int:
        return len(self._running)

    @property
    def rows_reserved(self) -> int:
        """Rows the running requests may grow to (a beam expands after its first step)."""
        return self._rows_reserved

    @property
    def free_rows(self) -> int:
        return self.config.max_batch_size - self._rows_reserved

    # --- the interface -------------------------------------------------------------------
    def idle_wait(self, waiting: Sequence[Request], now: float) -> float | None:
        """Seconds to wait before `schedule` is worth calling: 0 = now, None = until
        something arrives."""
        if self._running:
            return 0.0
        if not waiting:
            return None
        if sum(r.params.rows for r in waiting) >= self.config.max_batch_size:
            return 0.0
        return max(0.0, waiting[0].arrival + self.config.max_queue_delay - now)

    def schedule(self, waiting: Sequence[Request], now: float | None = None) -> ScheduledBatch:
        """Who leaves the batch before this step and who joins it at this step boundary."""
        now = self._clock() if now is None else now
        retired = self._retire(now)
        admitted: list[Request] = []
        dropped: list[tuple[Request, RequestStatus]] = []
        admitting = self._may_admit()
        free = self.free_rows
        for request in waiting:
            reason = request.abandoned_status(now)
            if reason is not None:
                dropped.append((request, reason))
                continue
            if not admitting:
                continue  # still scanned, so abandoned requests leave the queue now
            if request.params.rows <= free:
                admitted.append(request)
                free -= request.params.rows
            elif now - request.arrival >= self.config.max_bypass_delay:
                admitting = False  # it has waited long enough: let the rows drain for it
        for request in admitted:
            self._running[id(request)] = request
            self._rows_reserved += request.params.rows
        admitted.sort(key=lambda r: r.source_length)
        return ScheduledBatch(tuple(admitted), tuple(dropped), tuple(retired))

    def update(self, finished: Iterable[Request]) -> None:
        """Requests that left the batch in the last step (done or failed): free their rows."""
        for request in finished:
            if self._running.pop(id(request), None) is not None:
                self._rows_reserved -= request.params.rows

    def clear(self) -> list[Request]:
        """Forget every running request (the engine failed or stops); returns them."""
        running = list(self._running.values())
        self._running.clear()
        self._rows_reserved = 0
        return running

    # --- the rules -----------------------------------------------------------------------
    def _may_admit(self) -> bool:
        return True

    def _retire(self, now: float) -> list[tuple[Request, RequestStatus]]:
        retired = []
        for request in self._running.values():
            reason = request.abandoned_status(now)
            if reason is not None:
                retired.append((request, reason))
        self.update(r for r, _ in retired)
        return retired


class StaticBatching(BatchingPolicy):
    """A batch runs to completion before the next is formed (kept for comparison)."""

    name = "static"

    def _may_admit(self) -> bool:
        return not self._running


POLICIES: dict[str, type[BatchingPolicy]] = {
    BatchingPolicy.name: BatchingPolicy,
    StaticBatching.name: StaticBatching,
}


def make_policy(
    name: str, config: PolicyConfig, clock: Callable[[], float] = time.monotonic
) -> BatchingPolicy:
    try:
        return POLICIES[name](config, clock)
    except KeyError:
        raise ValueError(f"unknown batching policy {name!r}; known: {sorted(POLICIES)}") from None
