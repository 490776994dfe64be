"""Translation quality of the Marian students through the running server, beside the
package's own engine in the same run (BLEU and chrF, sacrebleu), both directions.

    python -m benchmarks.marian_quality --repo models --data data/marian \
        --out docs/results/marian_quality.json

Test sets: Debian's human pt_BR translations of package descriptions (the test split of
`python -m benchmarks.marian_data`; pt -> en reads the pairs the other way round) and the 60
everyday sentences of tests/fixtures/everyday/en_pt.jsonl. The server splits a text into
sentences and reassembles it (its document handling); the package's engine translates each
line whole. Our side is decoded with the shortlist on (the default) and off.
"""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sacrebleu

from benchmarks.marian_common import (
    DIRECTIONS,
    Pairs,
    bundle_name,
    debian,
    everyday,
    package_engine,
    serving,
    translate_all,
    write_json,
)


def scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
    }


def package_outputs(direction: str, texts: list[str]) -> list[str]:
    engine = package_engine(direction)
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(engine.translate, texts))


async def measure(repo: Path, data: Path, limit: int | None) -> dict[str, Any]:
    names = [bundle_name(d) for d in DIRECTIONS]
    report: dict[str, Any] = {}
    async with serving(repo, names) as server:
        target = f"127.0.0.1:{server.port}"
        for direction in DIRECTIONS:
            for pairs in (debian(data, direction, limit=limit), everyday(direction)):
                report[f"{direction} {pairs.name}"] = await _one(target, direction, pairs)
    return report


async def _one(target: str, direction: str, pairs: Pairs) -> dict[str, Any]:
    package = await asyncio.to_thread(package_outputs, direction, pairs.sources)
    served = await translate_all(target, pairs.sources, direction)
    served_off = await translate_all(target, pairs.sources, direction, shortlist=False)
    ours, theirs = scores(served, pairs.references), scores(package, pairs.references)
    return {
        "sentences": len(pairs.sources),
        "package_engine": theirs,
        "served_shortlist_on": ours,
        "served_shortlist_off": scores(served_off, pairs.references),
        "chrf_minus_package": round(ours["chrf"] - theirs["chrf"], 2),
        "identical_to_package": sum(a == b for a, b in zip(served, package, strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("models"))
    parser.add_argument("--data", type=Path, default=Path("data/marian"))
    parser.add_argument("--limit", type=int, help="Debian test pairs at most (default: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = asyncio.run(measure(args.repo, args.data, args.limit))
    write_json(args.out, {"command": "python -m benchmarks.marian_quality", "results": report})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
