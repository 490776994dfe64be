"""The run's report: one JSON-ready dict (config, machine, counts, errors by code, throughput,
tokens per second, percentiles, a per-second time series) and its short text form."""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seq2seq_client.loadtest.mix import Mix
from seq2seq_client.loadtest.results import LATE_SECONDS, RunStats
from seq2seq_client.loadtest.runner import LoadConfig
from seq2seq_client.loadtest.schedule import Phase
from seq2seq_client.types import ModelInfo


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """Where the load generator ran (not the server)."""
    return {
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def _config(config: LoadConfig, mix: Mix) -> dict[str, Any]:
    fields = asdict(config)
    fields.pop("token")
    fields["tls"] = config.tls is not None
    fields["authenticated"] = config.token is not None
    if config.mode == "closed":
        fields.pop("rate")
        fields.pop("max_in_flight")
        fields.pop("seed")
    else:
        fields.pop("concurrency")
    per_pass: dict[str, int] = {}
    for entry in mix.entries:
        per_pass[entry.rpc] = per_pass.get(entry.rpc, 0) + entry.weight
    fields["mix"] = {"file": mix.source, "lines": len(mix.entries), "requests_per_pass": per_pass}
    return fields


def _calls(stats: RunStats, phase: Phase) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (rpc, code), n in sorted(stats.calls[phase].items()):
        table.setdefault(rpc, {})[code] = n
    return table


def _timeline(stats: RunStats) -> list[dict[str, Any]]:
    """One row per second of the window; `span` is the part of that second inside the window
    (below 1 only in the last row), so a rate is `ok / span`."""
    rows = []
    last = max(stats.per_second, default=-1)
    for second in range(last + 1):
        span = round(min(1.0, max(stats.window_seconds - second, 0.001)), 3)
        s = stats.per_second.get(second)
        if s is None:
            rows.append(
                {
                    "second": second,
                    "span": span,
                    "sent": 0,
                    "ok": 0,
                    "errors": 0,
                    "output_tokens": 0,
                }
            )
            continue
        figures = s.latency.summary_ms()
        rows.append(
            {
                "second": second,
                "span": span,
                "sent": s.sent,
                "ok": s.ok,
                "errors": s.errors,
                "output_tokens": s.output_tokens,
                "p50_ms": figures["p50_ms"],
                "p99_ms": figures["p99_ms"],
                "max_ms": figures["max_ms"],
            }
        )
    return rows


def build_report(
    config: LoadConfig,
    mix: Mix,
    stats: RunStats,
    models: Sequence[ModelInfo] = (),
    started_at: datetime.datetime | None = None,
) -> dict[str, Any]:
    window = stats.window_seconds
    ok = stats.count(Phase.MEASURED, ok=True)
    measured = stats.count(Phase.MEASURED)
    started_at = started_at or datetime.datetime.now(datetime.timezone.utc)
    return {
        "tool": "seq2seq-load",
        "started_at": started_at.isoformat(timespec="seconds"),
        "config": _config(config, mix),
        "machine": machine(),
        "models": [
            {k: getattr(m, k) for k in ("name", "version", "task", "provider", "precision")}
            for m in models
        ],
        "window_seconds": round(window, 3),
        "requests": {
            "measured": measured,
            "ok": ok,
            "errors": measured - ok,
            "dropped": stats.dropped[Phase.MEASURED],
            "late_sends": stats.late_sends,
            "warmup": stats.count(Phase.WARMUP),
            "warmup_dropped": stats.dropped[Phase.WARMUP],
        },
        "errors_by_code": stats.errors_by_code(),
        "calls": {"warmup": _calls(stats, Phase.WARMUP), "measured": _calls(stats, Phase.MEASURED)},
        "offered_rps": config.rate if config.mode != "closed" else None,
        "throughput_rps": round(ok / window, 2) if window else None,
        "output_tokens": stats.output_tokens,
        "output_tokens_per_second": round(stats.output_tokens / window, 1) if window else None,
        "latency_ms": stats.latency.summary_ms(),
        "latency_ms_by_rpc": {
            rpc: h.summary_ms() for rpc, h in sorted(stats.latency_by_rpc.items())
        },
        "server_total_ms": stats.server_total.summary_ms(),
        "server_queue_ms": stats.server_queue.summary_ms(),
        "send_lag_ms": stats.send_lag.summary_ms(),
        "late_send_threshold_ms": LATE_SECONDS * 1000,
        "client_cpu_seconds": round(stats.client_cpu_seconds, 3),
        "latency_histogram_ms": [
            [round(middle * 1000, 3), n] for middle, n in stats.latency.buckets()
        ],
        "timeline": _timeline(stats),
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_text(report: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    c, r, lat = report["config"], report["requests"], report["latency_ms"]
    load = (
        f"closed loop, {c['concurrency']} clients"
        if c["mode"] == "closed"
        else f"{c['mode']} arrivals at {c['rate']:g}/s"
    )
    errors = ", ".join(f"{k} {v}" for k, v in report["errors_by_code"].items()) or "none"
    lines = [
        f"target {c['target']}: {load}, {report['window_seconds']:.1f} s measured "
        f"(+{r['warmup']} warm-up calls)",
        f"requests {r['measured']}: ok {r['ok']}, errors {r['errors']} ({errors}), "
        f"dropped {r['dropped']}, late sends {r['late_sends']}",
        f"throughput {report['throughput_rps'] or 0:.1f} req/s, "
        f"{report['output_tokens_per_second'] or 0:.0f} output tokens/s",
        "latency ms: "
        + "  ".join(
            f"{name} {_ms(lat[f'{name}_ms'])}" for name in ("p50", "p90", "p99", "p99_9", "max")
        ),
    ]
    for rpc, figures in report["latency_ms_by_rpc"].items():
        lines.append(
            f"  {rpc:<10} p50 {_ms(figures['p50_ms'])}  p99 {_ms(figures['p99_ms'])}  "
            f"max {_ms(figures['max_ms'])}"
        )
    return "\n".join(lines)
