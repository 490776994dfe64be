"""Load tester of the seq2seq service (`seq2seq-load`): closed and open loop over a mix of
Translate, Summarize and Answer requests, through the client SDK.

    mix.py       the JSON-lines mix file, checked whole before any load
    schedule.py  closed loop / constant / Poisson arrivals, warm-up and bounds
    runner.py    the asyncio load over one channel, pre-flight check
    histogram.py latency percentiles with bounded relative error (HdrHistogram-like)
    results.py   outcomes folded into counts, histograms and a per-second series
    report.py    the JSON report and its text summary
    plot.py      the PNG (matplotlib, the `load` extra)
    progress.py  the one-line status while it runs
    cli.py       the command line

`run_report(config, mix)` runs one load in its own event loop and returns the report dict
(for a process pool: the benchmark suite uses it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on use, so that the cli can quiet gRPC before gRPC loads
    from seq2seq_client.loadtest.mix import Mix
    from seq2seq_client.loadtest.runner import LoadConfig


def run_report(config: LoadConfig, mix: Mix) -> dict[str, Any]:
    """Pre-flight, load and report in a fresh event loop (blocks until the run ends)."""
    from seq2seq_client.loadtest.report import build_report
    from seq2seq_client.loadtest.runner import load_test

    stats, models = asyncio.run(load_test(config, mix))
    return build_report(config, mix, stats, models)
