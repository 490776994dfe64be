"""A one-line status on stderr while the load runs: elapsed, sent, ok, errors, rate, p99."""

from __future__ import annotations

import sys
from typing import TextIO

from seq2seq_client.loadtest.results import RunStats
from seq2seq_client.loadtest.schedule import Phase

MIN_INTERVAL = 0.25  # seconds: the shortest interval the current rate is computed over


class ProgressLine:
    """Call with (stats, seconds since start); rewrites one terminal line each time."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self._last_time = 0.0
        self._last_done = 0
        self._rate = 0.0
        self._width = 0

    def __call__(self, stats: RunStats, elapsed: float) -> None:
        done = stats.count(Phase.WARMUP) + stats.count(Phase.MEASURED)
        interval = elapsed - self._last_time
        if interval >= MIN_INTERVAL:  # a shorter one (the final update) keeps the last rate
            self._rate = (done - self._last_done) / interval
            self._last_time, self._last_done = elapsed, done
        rate = self._rate
        p99 = stats.latency.percentile(99.0)
        phase = "measuring" if stats.window_start is not None else "warm-up"
        line = (
            f"{elapsed:6.1f} s {phase}  sent {done + stats.in_flight}  "
            f"ok {stats.count(Phase.MEASURED, ok=True)}  "
            f"errors {stats.count(Phase.MEASURED, ok=False)}  "
            f"dropped {stats.dropped[Phase.MEASURED]}  {rate:.1f} calls/s  "
            f"p99 {'-' if p99 is None else f'{p99 * 1000:.1f} ms'}"
        )
        self.out.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self.out.flush()

    def close(self) -> None:
        if self._width:
            self.out.write("\n")
            self.out.flush()
