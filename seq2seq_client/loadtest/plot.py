"""The report as a PNG: latency over time, the latency distribution, throughput per second.

Needs matplotlib (the server's `load` extra, or the client distribution's `plot` extra); it
reads only the report dict, so a saved JSON report can be plotted again later.
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
            "--plot needs matplotlib: pip install 'matplotlib>=3.8' (the client distribution's "
            "`plot` extra)"
        ) from None


def percentile_curve(histogram: list[list[float]]) -> tuple[list[float], list[float]]:
    """(1 / (1 - percentile), latency ms) per bucket, through the slowest call.

    A bucket is drawn at the percentile of its last call, (i - 1/2) / n for the i-th of n
    calls (the midpoint rule), so even the slowest call has a finite place, at 2n: the
    curve runs on to the maximum instead of stopping one bucket short of it.
    """
    total = sum(n for _, n in histogram)
    xs, ys, seen = [], [], 0.0
    for middle, n in histogram:
        seen += n
        if n:
            xs.append(total / (total - seen + 0.5))
            ys.append(middle)
    return xs, ys


# Named percentiles of the report and where they sit on the distribution's x axis.
_MARKS = (("p50", 2.0), ("p90", 10.0), ("p99", 100.0), ("p99_9", 1000.0))


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

    # max first and lightest, so p99 stays visible where the two meet (few calls a second)
    styles = (
        ("max_ms", "max", {"color": "tab:red", "linestyle": ":", "marker": "x", "alpha": 0.7}),
        ("p99_ms", "p99", {"color": "tab:orange", "marker": ".", "linewidth": 2}),
        ("p50_ms", "p50", {"color": "tab:blue", "marker": "."}),
    )
    for key, label, style in styles:
        points = [(row["second"], row[key]) for row in timeline if row.get(key) is not None]
        if points:
            over_time.plot(*zip(*points, strict=True), label=label, **style)
    over_time.set(title="latency over time (successful calls)", xlabel="second", ylabel="ms")
    over_time.set_yscale("log")
    over_time.yaxis.set_major_formatter(ScalarFormatter())
    over_time.yaxis.set_minor_formatter(ScalarFormatter())
    handles, labels = over_time.get_legend_handles_labels()
    if handles:  # legend in p50, p99, max order
        over_time.legend(handles[::-1], labels[::-1], loc="upper left")
    over_time.grid(True, which="both", alpha=0.3)

    xs, ys = percentile_curve(report["latency_histogram_ms"])
    lat = report["latency_ms"]
    if xs:
        distribution.plot(xs, ys, color="tab:blue")
        distribution.set_xscale("log")
        calls = sum(n for _, n in report["latency_histogram_ms"])
        marks = [(x, lat[f"{name}_ms"], name) for name, x in _MARKS if x <= calls]
        if lat["max_ms"] is not None:
            marks.append((max(xs[-1], 2.0), lat["max_ms"], "max"))
        for x, value, name in marks:
            if value is not None:
                distribution.plot([x], [value], "o", color="tab:red")
                last = name == "max"  # at the right edge: its label goes to the left
                distribution.annotate(
                    f"{name.replace('_', '.')} {value:.1f}",
                    (x, value),
                    textcoords="offset points",
                    xytext=(-6, 6) if last else (6, -12),
                    ha="right" if last else "left",
                )
        ticks = [x for x in (2, 10, 100, 1000, 10000, 100000) if x <= max(xs) * 1.5]
        distribution.set_xticks(ticks)
        distribution.set_xticklabels([f"{100 - 100 / t:g}%" for t in ticks])
        distribution.set_xlim(1.5, max(xs) * 1.5)
        distribution.set_ylim(0, max(ys) * 1.15)
    named = ", ".join(
        f"{name.replace('_', '.')} {lat[f'{name}_ms']:.1f}"
        for name in ("p50", "p99", "p99_9", "max")
        if lat[f"{name}_ms"] is not None
    )
    distribution.set(title=f"latency by percentile (ms: {named})", xlabel="percentile", ylabel="ms")
    distribution.grid(True, which="both", alpha=0.3)

    whole = [row for row in timeline if row["span"] >= 1.0]  # the last one may be partial
    seconds = [row["second"] for row in whole]
    ok = [row["ok"] for row in whole]
    errors = [row["errors"] for row in whole]
    throughput.bar(seconds, ok, width=0.9, label="ok")
    throughput.bar(seconds, errors, width=0.9, bottom=ok, label="errors", color="tab:red")
    top = max([*(o + e for o, e in zip(ok, errors, strict=True)), 1])
    if report.get("offered_rps"):
        throughput.axhline(report["offered_rps"], color="black", linestyle="--", label="offered")
        top = max(top, report["offered_rps"])
    throughput.set_ylim(0, top * 1.2)  # room above the bars and the offered line
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
