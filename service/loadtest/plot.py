"""The report as a PNG: latency over time, the latency distribution, throughput per second.

Needs matplotlib (the `load` extra: pip install 'seq2seq-serve[load]'); it reads only the
report dict, so a saved JSON report can be plotted again later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PlotError(Exception):
    """The plot cannot be made (matplotlib missing, or the file cannot be written)."""


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(
            "--plot needs matplotlib: pip install 'seq2seq-serve[load]' (or matplotlib>=3.8)"
        ) from None


def _distribution(histogram: list[list[float]]) -> tuple[list[float], list[float]]:
    """(1 / (1 - cumulative fraction), latency ms) per bucket, the last bucket left out."""
    total = sum(n for _, n in histogram)
    xs, ys, seen = [], [], 0.0
    for middle, n in histogram:
        seen += n
        if seen < total:
            xs.append(1.0 / (1.0 - seen / total))
            ys.append(middle)
    return xs, ys


def save_plot(report: dict[str, Any], path: Path) -> None:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    timeline = report["timeline"]
    config = report["config"]
    load = (
        f"closed loop x{config['concurrency']}"
        if config["mode"] == "closed"
        else f"{config['mode']} {config['rate']:g}/s"
    )
    fig, (over_time, distribution, throughput) = plt.subplots(3, 1, figsize=(9, 11))
    fig.suptitle(f"seq2seq-load: {config['target']}, {load}")

    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
        points = [(row["second"], row[key]) for row in timeline if row.get(key) is not None]
        if points:
            over_time.plot(*zip(*points, strict=True), marker=".", label=label)
    over_time.set(title="latency over time (successful calls)", xlabel="second", ylabel="ms")
    over_time.set_yscale("log")
    over_time.yaxis.set_major_formatter(ScalarFormatter())
    over_time.yaxis.set_minor_formatter(ScalarFormatter())
    over_time.legend(loc="upper left")
    over_time.grid(True, which="both", alpha=0.3)

    xs, ys = _distribution(report["latency_histogram_ms"])
    if xs:
        distribution.plot(xs, ys)
        distribution.set_xscale("log")
        ticks = [x for x in (2, 10, 100, 1000, 10000) if x <= max(xs) * 10]
        distribution.set_xticks(ticks)
        distribution.set_xticklabels([f"{100 - 100 / t:g}%" for t in ticks])
    lat = report["latency_ms"]
    marks = ", ".join(
        f"{name} {lat[f'{name}_ms']:.1f}"
        for name in ("p50", "p99", "p99_9", "max")
        if lat[f"{name}_ms"] is not None
    )
    distribution.set(title=f"latency by percentile (ms: {marks})", xlabel="percentile", ylabel="ms")
    distribution.grid(True, which="both", alpha=0.3)

    whole = [row for row in timeline if row["span"] >= 1.0]  # the last one may be partial
    seconds = [row["second"] for row in whole]
    ok = [row["ok"] for row in whole]
    errors = [row["errors"] for row in whole]
    throughput.bar(seconds, ok, width=0.9, label="ok")
    throughput.bar(seconds, errors, width=0.9, bottom=ok, label="errors", color="tab:red")
    if report.get("offered_rps"):
        throughput.axhline(report["offered_rps"], color="black", linestyle="--", label="offered")
    throughput.set(
        title="completed calls per second (whole seconds of the window)",
        xlabel="second",
        ylabel="calls/s",
    )
    throughput.legend(loc="upper left")
    throughput.grid(True, alpha=0.3)

    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise PlotError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
