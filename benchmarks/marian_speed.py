"""Speed of the Marian students, same weights, 2 threads each, in one run: our offline
engine and the server over gRPC (32 concurrent calls; one call at a time), against the
package's own engine called from 2 threads (and from one, one call at a time).

    /work/tools/heavy python -m benchmarks.marian_speed --repo models --data data/marian \
        --out docs/results/marian_speed.json

Texts: the first --sentences of the Debian test split (benchmarks.marian_data) in the
chosen direction, each a description line or paragraph; the server splits paragraphs into
sentences (its document handling), the package's engine translates each line whole, so
both count "texts per second" over the same texts. The box is shared, so the throughput
figures are taken in --rounds interleaved rounds (package, ours with the shortlist on and
off, offline and served) and reported as medians; the one-at-a-time latencies alternate
package and server call by call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import defaultdict
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


def package_rate(engine: Any, texts: list[str]) -> float:
    with ThreadPoolExecutor(2) as pool:
        started = time.perf_counter()
        list(pool.map(engine.translate, texts))
        return _rate(len(texts), time.perf_counter() - started)


def offline_rate(engine: Seq2SeqEngine, texts: list[str], shortlist: bool) -> float:
    started = time.perf_counter()
    engine.generate_batch(texts, shortlist=shortlist)
    return _rate(len(texts), time.perf_counter() - started)


async def served_rate(target: str, direction: str, texts: list[str], shortlist: bool) -> float:
    started = time.perf_counter()
    await translate_all(target, texts, direction, concurrency=32, shortlist=shortlist)
    return _rate(len(texts), time.perf_counter() - started)


async def measure(
    repo: Path, fp32_repo: Path | None, direction: str, texts: list[str], single: list[str],
    rounds: int,
) -> dict[str, Any]:  # fmt: skip
    package = package_engine(direction)
    name = bundle_name(direction)
    offline = {"int8": Seq2SeqEngine(repo / name / "1", intra_op_threads=2, max_batch_size=32)}
    if fp32_repo is not None:
        offline["fp32"] = Seq2SeqEngine(
            fp32_repo / name / "1", intra_op_threads=2, max_batch_size=32
        )
    rates: dict[str, list[float]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    async with serving(repo, [name]) as server:
        target = f"127.0.0.1:{server.port}"
        await translate_all(target, texts[:64], direction)  # warm-up, both sides
        package_rate(package, texts[:16])
        for engine in offline.values():
            engine.generate_batch(texts[:32])
        for _ in range(rounds):
            rates["package_2_threads"].append(await asyncio.to_thread(package_rate, package, texts))
            for shortlist in (True, False):
                key = "on" if shortlist else "off"
                rates[f"served_int8_32_concurrent_shortlist_{key}"].append(
                    await served_rate(target, direction, texts, shortlist)
                )
                for precision, engine in offline.items():
                    rates[f"offline_{precision}_shortlist_{key}"].append(
                        await asyncio.to_thread(offline_rate, engine, texts, shortlist)
                    )
        for text in single:
            started = time.perf_counter()
            await asyncio.to_thread(package.translate, text)
            latency["package"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await translate_all(target, [text], direction, concurrency=1)
            latency["served_int8"].append(time.perf_counter() - started)
    return {
        "texts_per_second_median": {k: statistics.median(v) for k, v in rates.items()},
        "texts_per_second_rounds": dict(rates),
        "p50_ms_one_at_a_time": {
            k: round(1000 * statistics.median(v), 2) for k, v in latency.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("models"))
    parser.add_argument("--fp32-repo", type=Path, help="also measure the fp32 variant offline")
    parser.add_argument("--data", type=Path, default=Path("data/marian"))
    parser.add_argument("--direction", default="en-pt", choices=["en-pt", "pt-en"])
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--single", type=int, default=60, help="texts sent one at a time")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    texts = debian(args.data, args.direction, limit=args.sentences).sources
    load_before = os.getloadavg()
    figures = asyncio.run(
        measure(args.repo, args.fp32_repo, args.direction, texts, texts[: args.single], args.rounds)
    )
    rates, p50 = figures["texts_per_second_median"], figures["p50_ms_one_at_a_time"]
    report = {
        "command": "python -m benchmarks.marian_speed " + " ".join(argv or []),
        "direction": args.direction,
        "texts": len(texts),
        "threads": 2,
        "load_average_before_after": [load_before, os.getloadavg()],
        **figures,
        "ratios": {
            "served_32_shortlist_on_vs_package_2_threads": round(
                rates["served_int8_32_concurrent_shortlist_on"] / rates["package_2_threads"], 2
            ),
            "served_32_shortlist_off_vs_package_2_threads": round(
                rates["served_int8_32_concurrent_shortlist_off"] / rates["package_2_threads"], 2
            ),
            "offline_int8_vs_package_2_threads": round(
                rates["offline_int8_shortlist_on"] / rates["package_2_threads"], 2
            ),
            "served_p50_vs_package_p50": round(p50["served_int8"] / p50["package"], 2),
        },
    }
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
