"""The one-line progress display, fed made-up outcomes (no server needed)."""

from __future__ import annotations

import io

from seq2seq_client.loadtest.progress import ProgressLine
from seq2seq_client.loadtest.results import Outcome, RunStats
from seq2seq_client.loadtest.schedule import Phase


def _call(stats: RunStats, phase: Phase, at: float, code: str = "OK") -> None:
    stats.started(phase, at)
    stats.record(Outcome("Translate", phase, at, at, at + 0.010, code, output_tokens=5))


def test_progress_rewrites_one_line_with_counts_rate_and_p99() -> None:
    out = io.StringIO()
    progress = ProgressLine(out)
    stats = RunStats()
    _call(stats, Phase.WARMUP, 0.0)
    progress(stats, 0.5)
    assert "warm-up" in out.getvalue() and "p99 -" in out.getvalue()
    for n in range(4):
        _call(stats, Phase.MEASURED, 0.5 + n * 0.1)
    _call(stats, Phase.MEASURED, 0.9, code="UNAVAILABLE")
    stats.started(Phase.MEASURED, 1.0)  # one still in flight
    progress(stats, 1.0)
    progress.close()
    lines = out.getvalue().split("\r")
    last = lines[-1]
    assert last.endswith("\n") and out.getvalue().count("\n") == 1
    assert "measuring" in last and "sent 7" in last and "ok 4" in last and "errors 1" in last
    assert "10.0 calls/s" in last  # 5 calls finished in the last 0.5 s
    assert "p99 10.0 ms" in last


def test_run_stats_window_and_per_second_series() -> None:
    stats = RunStats()
    for n in range(6):
        _call(stats, Phase.MEASURED, 2.0 + n * 0.3)  # intended 2.0 .. 3.5, each 10 ms
    assert stats.window_start == 2.0
    assert abs(stats.window_seconds - 1.51) < 1e-9
    assert {s: v.ok for s, v in stats.per_second.items()} == {0: 4, 1: 2}
    assert stats.output_tokens == 30 and stats.errors_by_code() == {}
