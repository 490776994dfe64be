"""Latency histogram with bounded relative error, in the manner of HdrHistogram.

Values are recorded as whole microseconds into log-linear buckets: every value below
`2 * SUB_BUCKETS` has its own bucket, and above that each power-of-two range is cut into
`SUB_BUCKETS` equal buckets, so a bucket's width is at most 1/SUB_BUCKETS of its lowest
value. A percentile is reported as the middle of its bucket: within 1/(2 * SUB_BUCKETS) =
0.05% of the exact order statistic (3 significant digits), plus the 1 us resolution.
Memory grows with the number of distinct buckets hit (about 1,000 per factor of two in
latency), not with the number of values; the exact count, sum, min and max are kept aside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

SUB_BUCKETS = 1024  # buckets per power of two above 2 * SUB_BUCKETS microseconds
_LINEAR_LIMIT = 2 * SUB_BUCKETS  # values below this many microseconds are exact
_SHIFT = SUB_BUCKETS.bit_length()  # 11: bit length of the values in the linear range
DEFAULT_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def _index(micros: int) -> int:
    if micros < _LINEAR_LIMIT:
        return micros
    exponent = micros.bit_length() - _SHIFT  # micros >> exponent is in [1024, 2047]
    return (exponent + 1) * SUB_BUCKETS + (micros >> exponent) - SUB_BUCKETS


def _bucket_range(index: int) -> tuple[int, int]:
    """[lowest, highest] microseconds that fall into bucket `index`."""
    if index < _LINEAR_LIMIT:
        return index, index
    exponent = index // SUB_BUCKETS - 1
    low = (index % SUB_BUCKETS + SUB_BUCKETS) << exponent
    return low, low + (1 << exponent) - 1


class LatencyHistogram:
    """Counts of latencies (recorded in seconds) in buckets of bounded relative width."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}  # bucket index -> values recorded in it
        self.count = 0
        self.total_seconds = 0.0  # exact sum, for the mean
        self.min_seconds = math.inf
        self.max_seconds = 0.0

    def record(self, seconds: float) -> None:
        micros = max(0, round(seconds * 1e6))
        index = _index(micros)
        self._counts[index] = self._counts.get(index, 0) + 1
        self.count += 1
        self.total_seconds += seconds
        self.min_seconds = min(self.min_seconds, seconds)
        self.max_seconds = max(self.max_seconds, seconds)

    def merge(self, other: LatencyHistogram) -> None:
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        self.count += other.count
        self.total_seconds += other.total_seconds
        self.min_seconds = min(self.min_seconds, other.min_seconds)
        self.max_seconds = max(self.max_seconds, other.max_seconds)

    def buckets(self) -> Iterator[tuple[float, int]]:
        """(bucket middle in seconds, count) in increasing order of latency."""
        for index in sorted(self._counts):
            low, high = _bucket_range(index)
            yield (low + high) / 2e6, self._counts[index]

    def percentile(self, q: float) -> float | None:
        """The q-th percentile in seconds: the smallest recorded value with at least q% of
        the values at or below it (numpy's "inverted_cdf"); None when empty."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be within 0..100, not {q}")
        if not self.count:
            return None
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for middle, n in self.buckets():
            seen += n
            if seen >= rank:  # clamp to the exact extremes: never beyond what was seen
                return min(max(middle, self.min_seconds), self.max_seconds)
        return self.max_seconds

    def percentiles(self, qs: Iterable[float] = DEFAULT_PERCENTILES) -> dict[float, float | None]:
        return {q: self.percentile(q) for q in qs}

    @property
    def mean_seconds(self) -> float | None:
        return self.total_seconds / self.count if self.count else None

    def summary_ms(self, prefix: str = "") -> dict[str, Any]:
        """p50/p90/p99/p99.9/max and mean in milliseconds (None when nothing was recorded)."""
        names = {50.0: "p50", 90.0: "p90", 99.0: "p99", 99.9: "p99_9"}
        figures: dict[str, Any] = {
            f"{prefix}{names[q]}_ms": _ms(v) for q, v in self.percentiles(names).items()
        }
        figures[f"{prefix}max_ms"] = _ms(self.max_seconds if self.count else None)
        figures[f"{prefix}mean_ms"] = _ms(self.mean_seconds)
        return figures


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
