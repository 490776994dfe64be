"""One model's bounded waiting queue: the only engine object two threads touch.

`submit` runs on the caller's thread (the event loop, or the offline API's), everything
else on the engine's. A full queue refuses at once (load shedding, never unbounded memory);
a closed queue refuses new work while what it holds is still served. Which waiting requests
run, and when, is the batching policy's business (`policy.py`), not the queue's.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from service.engine.requests import Request
from service.errors import Overloaded, Unavailable


class QueueObserver(Protocol):
    """Told the waiting count every time it changes (submit, admission, drain)."""

    def queue_changed(self, waiting: int) -> None: ...


class RequestQueue:
    def __init__(self, max_size: int, observer: QueueObserver | None = None) -> None:
        self._max_size = max_size  # waiting requests before submit() refuses
        self._observer = observer
        self._waiting: deque[Request] = deque()  # arrival order
        self._condition = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, request: Request) -> None:
        """Queue a request or refuse at once."""
        with self._condition:
            if self._closed:
                raise Unavailable("the server is shutting down and takes no new requests")
            if len(self._waiting) >= self._max_size:
                raise Overloaded(
                    f"the model's queue is full ({self._max_size} waiting); "
                    "retry with backoff or send to another replica"
                )
            self._waiting.append(request)
            self._report()
            self._condition.notify()

    def snapshot(self) -> list[Request]:
        """The waiting requests in arrival order (a copy: the policy reads it unlocked)."""
        with self._condition:
            return list(self._waiting)

    def remove(self, requests: Iterable[Request]) -> None:
        """Take requests the policy admitted or dropped out of the queue."""
        gone = {id(r) for r in requests}
        if not gone:
            return
        with self._condition:
            self._waiting = deque(r for r in self._waiting if id(r) not in gone)
            self._report()

    def wait(self, timeout: float) -> None:
        """Block until a request arrives, the queue closes, `wake` is called, or `timeout`."""
        if timeout <= 0:
            return
        with self._condition:
            self._condition.wait(timeout)

    def wake(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def close(self) -> None:
        """Refuse new requests; those already waiting are still admitted and served."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def drain(self) -> list[Request]:
        """Remove and return everything still waiting (the engine is stopping)."""
        with self._condition:
            waiting = list(self._waiting)
            self._waiting.clear()
            self._report()
            return waiting

    def _report(self) -> None:
        """Called with the lock held, so the reported depths arrive in order."""
        if self._observer is not None:
            self._observer.queue_changed(len(self._waiting))
