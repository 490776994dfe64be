"""Admission control for one model: a bounded waiting queue and the batching policy.

Policy: while nothing is decoding, wait up to `max_queue_delay` after the oldest arrival
for the batch to fill (dynamic batching); while a batch is decoding, admit waiting
requests at every step boundary up to `max_batch_size` (iteration-level batching).
With `continuous` off (static batching, kept for benchmarks) nothing joins until the
running batch has finished.
Requests whose client cancelled or whose deadline passed are dropped before they cost
an encoder run. Thread-safe: `submit` runs on the event loop, the rest on the engine thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from service.engine.requests import Request, RequestStatus
from service.errors import Overloaded, Unavailable


class QueueObserver(Protocol):
    """Told the waiting count every time it changes (submit, admission, drain)."""

    def queue_changed(self, waiting: int) -> None: ...


@dataclass(frozen=True)
class SchedulerConfig:
    max_batch_size: int  # most sequences decoded together
    max_queue_size: int  # waiting requests before submit() refuses
    max_queue_delay: float  # seconds an idle model waits for a fuller first batch
    continuous: bool = True  # False: static batching, a batch runs to completion before the next


@dataclass(frozen=True)
class Admission:
    admitted: tuple[Request, ...]  # join the running batch now, sorted by source length
    dropped: tuple[tuple[Request, RequestStatus], ...]  # left before running: why


class Scheduler:
    def __init__(
        self,
        config: SchedulerConfig,
        clock: Callable[[], float] = time.monotonic,
        observer: QueueObserver | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._observer = observer
        self._waiting: deque[Request] = deque()
        self._condition = threading.Condition()
        self._closed = False

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def submit(self, request: Request) -> None:
        """Queue a request or refuse at once: a full queue sheds load, never grows."""
        with self._condition:
            if self._closed:
                raise Unavailable("the server is shutting down and takes no new requests")
            if len(self._waiting) >= self._config.max_queue_size:
                raise Overloaded(
                    f"the model's queue is full ({self._config.max_queue_size} waiting); "
                    "retry with backoff or send to another replica"
                )
            self._waiting.append(request)
            self._report()
            self._condition.notify()

    def close(self) -> None:
        """Refuse new requests; those already waiting are still admitted and served."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def wake(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def wait_for_work(self, num_running: int, stop: threading.Event, timeout: float) -> None:
        """Block the engine thread until a batch is worth running (or `timeout` passes)."""
        if num_running > 0:
            return
        deadline = self._clock() + timeout
        with self._condition:
            while not stop.is_set():
                now = self._clock()
                if self._closed and not self._waiting:
                    return  # nothing will ever arrive: let the engine thread wind down
                if self._waiting:
                    ready_at = self._waiting[0].arrival + self._config.max_queue_delay
                    full = len(self._waiting) >= self._config.max_batch_size
                    if full or self._closed or now >= ready_at:
                        return
                    self._condition.wait(min(ready_at, deadline) - now)
                else:
                    if now >= deadline:
                        return
                    self._condition.wait(deadline - now)
                if self._clock() >= deadline:
                    return

    def admit(self, num_running: int) -> Admission:
        """Take the requests that join the running batch at this step boundary.

        `num_running` counts batch rows already reserved; a request needs one row per beam.
        """
        free = self._config.max_batch_size - num_running
        if not self._config.continuous and num_running > 0:
            free = 0  # static batching (for comparison): nobody joins a running batch
        admitted: list[Request] = []
        dropped: list[tuple[Request, RequestStatus]] = []
        now = self._clock()
        with self._condition:
            while self._waiting and self._waiting[0].params.rows <= free:
                request = self._waiting.popleft()
                reason = request.abandoned_status(now)
                if reason is None:
                    admitted.append(request)
                    free -= request.params.rows
                else:
                    dropped.append((request, reason))
            # Shed the queue's abandoned requests too, so their slots free up now.
            if self._waiting:
                kept: deque[Request] = deque()
                for request in self._waiting:
                    reason = request.abandoned_status(now)
                    if reason is None:
                        kept.append(request)
                    else:
                        dropped.append((request, reason))
                self._waiting = kept
            if admitted or dropped:
                self._report()
        admitted.sort(key=lambda r: r.source_length)
        return Admission(admitted=tuple(admitted), dropped=tuple(dropped))

    def drain_waiting(self) -> list[Request]:
        """Remove and return everything still waiting (used when the engine stops)."""
        with self._condition:
            waiting = list(self._waiting)
            self._waiting.clear()
            self._report()
            return waiting

    @property
    def closed(self) -> bool:
        return self._closed

    def _report(self) -> None:
        """Called with the lock held, so the reported depths arrive in order."""
        if self._observer is not None:
            self._observer.queue_changed(len(self._waiting))
