"""Speed of the Marian students, same weights, 2 threads each, in one run: our offline
engine and the server over gRPC (32 concurrent calls; one call at a time), against the
package's own engine called from 2 threads (and from one, one call at a time).

    /work/tools/heavy python -m benchmarks.marian_speed --repo models --data data/marian \
        --out docs/results/marian_speed.json

Texts: the first --sentences of the Debian test split (benchmarks.marian_data) in the
chosen direction, each a description line or paragraph; the server splits paragraphs into
sentences (its document handling), the package's engine translates each line whole, so
both count "texts per second" over the same texts. Every figure is measured after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.marian_common import (
    bundle_name,
    debian,
    package_engine,
    serving,
    translate_all,
    write_json,
)
from service.engine.offline import Seq2SeqEngine


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2)


def package_figures(direction: str, texts: list[str], single: list[str]) -> dict[str, Any]:
    engine = package_engine(direction)
    for text in texts[:8]:
        engine.translate(text)
    with ThreadPoolExecutor(2) as pool:
        started = time.perf_counter()
        list(pool.map(engine.translate, texts))
        seconds = time.perf_counter() - started
    latencies = []
    for text in single:
        started = time.perf_counter()
        engine.translate(text)
        latencies.append(time.perf_counter() - started)
    return {
        "texts_per_second_2_threads": _rate(len(texts), seconds),
        "p50_ms_one_at_a_time": round(1000 * statistics.median(latencies), 2),
    }


def offline_figures(bundle: Path, texts: list[str], shortlist: bool) -> dict[str, Any]:
    engine = Seq2SeqEngine(bundle, intra_op_threads=2, max_batch_size=32)
    engine.generate_batch(texts[:32], shortlist=shortlist)
    started = time.perf_counter()
    engine.generate_batch(texts, shortlist=shortlist)
    return {"texts_per_second": _rate(len(texts), time.perf_counter() - started)}


async def served_figures(
    repo: Path, direction: str, texts: list[str], single: list[str]
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    async with serving(repo, [bundle_name(direction)]) as server:
        target = f"127.0.0.1:{server.port}"
        await translate_all(target, texts[:64], direction)  # warm-up
        for shortlist in (True, False):
            started = time.perf_counter()
            await translate_all(target, texts, direction, concurrency=32, shortlist=shortlist)
            key = "shortlist_on" if shortlist else "shortlist_off"
            figures[f"texts_per_second_32_concurrent_{key}"] = _rate(
                len(texts), time.perf_counter() - started
            )
        latencies = []
        for text in single:
            started = time.perf_counter()
            await translate_all(target, [text], direction, concurrency=1)
            latencies.append(time.perf_counter() - started)
        figures["p50_ms_one_at_a_time"] = round(1000 * statistics.median(latencies), 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("models"))
    parser.add_argument("--fp32-repo", type=Path, help="also measure the fp32 variant here")
    parser.add_argument("--data", type=Path, default=Path("data/marian"))
    parser.add_argument("--direction", default="en-pt", choices=["en-pt", "pt-en"])
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--single", type=int, default=60, help="texts sent one at a time")
    parser.add_argument("--skip-served", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    texts = debian(args.data, args.direction, limit=args.sentences).sources
    single = texts[: args.single]
    report: dict[str, Any] = {
        "command": "python -m benchmarks.marian_speed " + " ".join(argv or []),
        "direction": args.direction,
        "texts": len(texts),
        "load_average": os.getloadavg(),
        "package_engine": package_figures(args.direction, texts, single),
    }
    repos = {"int8": args.repo, **({"fp32": args.fp32_repo} if args.fp32_repo else {})}
    for precision, repo in repos.items():
        bundle = repo / bundle_name(args.direction) / "1"
        figures = {
            f"offline_shortlist_{'on' if s else 'off'}": offline_figures(bundle, texts, s)
            for s in (True, False)
        }
        if not args.skip_served:
            figures["served"] = asyncio.run(served_figures(repo, args.direction, texts, single))
        report[precision] = figures
    package = report["package_engine"]
    ours = report["int8"]
    if "served" in ours:
        served = ours["served"]
        report["ratios"] = {
            "served_32_vs_package_2_threads": round(
                served["texts_per_second_32_concurrent_shortlist_on"]
                / package["texts_per_second_2_threads"],
                2,
            ),
            "served_p50_vs_package_p50": round(
                served["p50_ms_one_at_a_time"] / package["p50_ms_one_at_a_time"], 2
            ),
        }
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
