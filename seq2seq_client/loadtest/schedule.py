"""When requests are sent: closed loop (N clients) or open loop (constant or Poisson arrivals),
and which requests are warm-up, measured, or past the bounds.

Open-loop offsets are the *intended* send times, seconds after the start; the runner measures
each latency from its intended time, so a server (or a client) that falls behind cannot hide
the wait (no coordinated omission, as in wrk2).
"""

from __future__ import annotations

import enum
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

MODES = ("closed", "constant", "poisson")


def constant_offsets(rate: float) -> Iterator[float]:
    """0, 1/rate, 2/rate, ... (computed by multiplication, so no drift accumulates)."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, not {rate}")
    return (n / rate for n in itertools.count())


def poisson_offsets(rate: float, seed: int) -> Iterator[float]:
    """0, then exponential gaps of mean 1/rate: Poisson arrivals, the same for the same seed."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, not {rate}")
    rng = random.Random(seed)
    offset = 0.0
    while True:
        yield offset
        offset += rng.expovariate(rate)


def arrival_offsets(mode: str, rate: float, seed: int) -> Iterator[float]:
    """The intended send offsets of an open-loop mode."""
    if mode == "constant":
        return constant_offsets(rate)
    if mode == "poisson":
        return poisson_offsets(rate, seed)
    raise ValueError(f"{mode!r} is not an open-loop mode (constant, poisson)")


class Phase(enum.Enum):
    WARMUP = "warmup"  # sent and counted, but not in the measured figures
    MEASURED = "measured"
    DONE = "done"  # past the bounds: send nothing more


@dataclass(frozen=True)
class Bounds:
    """How long and how much: every run ends by time AND by count."""

    duration: float  # seconds of the measured window at most
    max_requests: int  # measured requests at most
    warmup_seconds: float = 0.0  # seconds of warm-up before the window (time-based warm-up)
    warmup_requests: int = 0  # requests of warm-up instead; wins over warmup_seconds when > 0

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, not {self.duration}")
        if self.max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, not {self.max_requests}")
        if self.warmup_seconds < 0 or self.warmup_requests < 0:
            raise ValueError("warm-up must be >= 0")


class Phases:
    """Classifies the n-th request, sent at `offset` seconds after the start, into a phase.

    Time-based warm-up: offsets before `warmup_seconds`. Count-based warm-up: the first
    `warmup_requests` requests (for at most `duration` seconds). The measured window starts at
    the first request after the warm-up and lasts `duration` seconds or `max_requests`
    requests, whichever ends first. Requests must be classified in order of offset.
    """

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.window_start: float | None = None  # offset of the first measured request
        self.warmup = 0  # requests classified WARMUP so far
        self.measured = 0  # requests classified MEASURED so far
        self._done = False

    def classify(self, offset: float) -> Phase:
        b = self.bounds
        if self._done:
            return Phase.DONE
        if self.window_start is None:
            in_warmup = (
                self.warmup < b.warmup_requests if b.warmup_requests else offset < b.warmup_seconds
            )
            if in_warmup and offset < (b.duration if b.warmup_requests else b.warmup_seconds):
                self.warmup += 1
                return Phase.WARMUP
            if in_warmup:  # count-based warm-up ran out of time: nothing left to measure
                self._done = True
                return Phase.DONE
            self.window_start = offset
        if self.measured >= b.max_requests or offset >= self.window_start + b.duration:
            self._done = True
            return Phase.DONE
        self.measured += 1
        return Phase.MEASURED
