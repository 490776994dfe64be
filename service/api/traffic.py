"""Calls in flight and the time of the last arrival, so a drain knows when it may stop gRPC.

Why: grpc-core's server shutdown kills every call it has received but not yet handed to
the application, and every call that arrives before the client has read the shutdown's
GOAWAY; the client sees CANCELLED. A draining server therefore keeps answering
UNAVAILABLE until no call has arrived for a quiet period, and only then stops gRPC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# Streams that live as long as the client's connection (a health watch, a reflection
# session): they count as arrivals but never hold a drain open.
LONG_LIVED = frozenset(
    {
        ("grpc.health.v1.Health", "Watch"),
        ("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo"),
    }
)


class Traffic:
    """Counts calls the application has started and not finished; only the event loop
    touches it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._in_flight = 0
        self.last_arrival = clock()  # clock time of the latest call start
        self.arrivals = 0  # calls started since the server started

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def started(self, service: str, method: str) -> bool:
        """Note an arrival; True when the call holds a drain open (call `finished` later)."""
        self.last_arrival = self._clock()
        self.arrivals += 1
        if (service, method) in LONG_LIVED:
            return False
        self._in_flight += 1
        return True

    def finished(self) -> None:
        self._in_flight -= 1

    async def wait_quiet(self, quiet_seconds: float, deadline: float) -> bool:
        """Wait until nothing is in flight and no call arrived for `quiet_seconds`.

        Returns False when `deadline` (clock time) came first.
        """
        while True:
            now = self._clock()
            if self._in_flight == 0 and now - self.last_arrival >= quiet_seconds:
                return True
            if now >= deadline:
                return False
            wake = self.last_arrival + quiet_seconds if self._in_flight == 0 else now + 0.01
            await asyncio.sleep(max(0.0, min(wake, deadline) - now))
