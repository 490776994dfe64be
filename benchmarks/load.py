"""The suite's clients: the load tester (`seq2seq_client.loadtest`) run in a spawned process.

`run_load(spec)` is a top-level function: the suite submits it to a spawn-context process
pool (its own event loop, never the server's) and gets back the figures it keeps: closed loop
(N clients) or open loop (Poisson arrivals, latency from the intended send time), bounded by
seconds and count, over en->fr Translate requests built from (text, max_output_tokens) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seq2seq_client.loadtest import run_report
from seq2seq_client.loadtest.mix import Mix, MixEntry
from seq2seq_client.loadtest.runner import LoadConfig
from seq2seq_client.types import DecodeOptions


def translate_mix(items: tuple[tuple[str, int], ...]) -> Mix:
    """(text, max_output_tokens; 0 = the model's limit) -> en->fr Translate requests, in order."""
    return Mix(
        source=f"{len(items)} held-out translate-en-fr sources",
        entries=tuple(
            MixEntry(
                rpc="Translate",
                text=text,
                source_language="en",
                target_language="fr",
                options=DecodeOptions(max_output_tokens=tokens),
            )
            for text, tokens in items
        ),
    )


@dataclass(frozen=True)
class LoadSpec:
    """One load: how (the load tester's config) and what (the mix)."""

    config: LoadConfig
    mix: Mix


def report_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the benchmarks keep from one load tester report (`seq2seq-load --json`)."""
    latency, requests = report["latency_ms"], report["requests"]
    flat = {
        "offered_rate": report["offered_rps"],
        "seconds": report["window_seconds"],
        "requests": requests["ok"],
        "output_tokens": report["output_tokens"],
        "requests_per_second": report["throughput_rps"] or 0.0,
        "tokens_per_second": report["output_tokens_per_second"] or 0.0,
        "errors": report["errors_by_code"],
        "dropped": requests["dropped"],
        "client_cpu_seconds": report["client_cpu_seconds"],
    }
    for prefix, figures in (
        ("", latency),
        ("server_total_", report["server_total_ms"]),
        ("server_queue_", report["server_queue_ms"]),
    ):
        flat.update({f"{prefix}{k}": figures[k] for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")})
    flat["p99_9_ms"] = latency["p99_9_ms"]
    return flat


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """In the client process: one load tester run, flattened to the figures the suite keeps."""
    report = run_report(spec.config, spec.mix)
    return {
        "mode": spec.config.mode,
        "concurrency": spec.config.concurrency if spec.config.mode == "closed" else None,
        **report_figures(report),
    }
