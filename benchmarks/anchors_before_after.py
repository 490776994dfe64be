"""Our offline engine on the OPUS-MT shape, before and after an engine change, in one run.

    python -m benchmarks.anchors_before_after OUT.json --old-tree /path/to/old/checkout \
        --old-bundle OLD_BUNDLE --new-bundle NEW_BUNDLE [--rounds 4] [--tokens 32]

Each side is a worker process with its own tree on PYTHONPATH (so each imports its own
`service`) and its own bundle (an engine change may come with a re-import, e.g. constant
decoder states). Both decode the same 32 held-out sources at batch 32, greedy and beam 4,
every output forced to `--tokens` tokens, 2 onnxruntime threads; rounds are interleaved
because the machine is shared and its speed drifts. The JSON holds every round's seconds,
the median tokens per second of each side, and a digest of each side's token ids: equal
digests mean identical outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CONFIGS = ((4, 32), (1, 32))  # (beam, batch)
SOURCES = 32


def worker(bundle: Path, threads: int) -> None:
    """Answer `beam batch tokens` lines with one JSON line: seconds and a digest of the ids."""
    from benchmarks.anchors import held_out_sources
    from service.bundle import read_manifest
    from service.engine.offline import Seq2SeqEngine
    from service.engine.tokenizer import open_tokenizer

    tokenizer = open_tokenizer(bundle, read_manifest(bundle))
    sources = [ids for _, ids in held_out_sources(tokenizer, SOURCES)]
    engines: dict[int, Any] = {}
    for line in sys.stdin:
        beam, batch, tokens = map(int, line.split())
        if beam * batch not in engines:
            engines[beam * batch] = Seq2SeqEngine(
                bundle, intra_op_threads=threads, max_batch_size=beam * batch
            )
        started = time.perf_counter()
        results = engines[beam * batch].generate_batch(
            sources[:batch], beam_size=beam, min_output_tokens=tokens, max_output_tokens=tokens
        )
        seconds = time.perf_counter() - started
        ids = str([list(r.best.token_ids) for r in results]).encode()
        print(json.dumps({"seconds": seconds, "ids": hashlib.sha256(ids).hexdigest()[:16]}))
        sys.stdout.flush()


class Side:
    """One (tree, bundle) worker process."""

    def __init__(self, tree: Path, bundle: Path, threads: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
        # this file run as a script: the tree's own `service` and `benchmarks` are imported
        command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        self.process = subprocess.Popen(
            [*command, str(bundle.resolve()), "--threads", str(threads)],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def decode(self, beam: int, batch: int, tokens: int) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{beam} {batch} {tokens}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args} stopped")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def compare(sides: dict[str, Side], rounds: int, tokens: int) -> dict[str, Any]:
    for beam, batch in CONFIGS:  # warm-up: sessions made, first runs paid
        for side in sides.values():
            side.decode(beam, batch, 4)
    results: dict[str, Any] = {}
    for round_index in range(rounds):
        for beam, batch in CONFIGS:
            key = f"{'greedy' if beam == 1 else f'beam{beam}'}_bs{batch}"
            order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
            for name in order:
                out = sides[name].decode(beam, batch, tokens)
                entry = results.setdefault(key, {}).setdefault(name, {"seconds": [], "ids": []})
                entry["seconds"].append(round(out["seconds"], 3))
                entry["ids"].append(out["ids"])
                print(f"round {round_index + 1} {key:12s} {name:4s} {out['seconds']:6.2f} s")
    for key, by_side in results.items():
        batch = int(key.rsplit("bs", 1)[1])
        for entry in by_side.values():
            entry["tokens_per_second"] = round(
                batch * tokens / statistics.median(entry["seconds"]), 1
            )
            entry["ids"] = sorted(set(entry["ids"]))
        old, new = by_side["old"], by_side["new"]
        by_side["new_over_old"] = round(new["tokens_per_second"] / old["tokens_per_second"], 3)
        by_side["identical_outputs"] = old["ids"] == new["ids"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anchors_before_after")
    parser.add_argument("out", type=Path, nargs="?", help="the JSON report")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--old-tree", type=Path)
    parser.add_argument("--old-bundle", type=Path)
    parser.add_argument("--new-tree", type=Path, default=Path.cwd())
    parser.add_argument("--new-bundle", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.threads)
        return 0
    missing = [f"--{n}" for n in ("old_tree", "old_bundle", "new_bundle") if not getattr(args, n)]
    if args.out is None or missing:
        parser.error("needs OUT and " + ", ".join(missing or ["--old-tree"]).replace("_", "-"))
    sides = {
        "old": Side(args.old_tree, args.old_bundle, args.threads),
        "new": Side(args.new_tree, args.new_bundle, args.threads),
    }
    try:
        results = compare(sides, args.rounds, args.tokens)
    finally:
        for side in sides.values():
            side.close()
    report = {
        "old": {"tree": str(args.old_tree), "bundle": str(args.old_bundle)},
        "new": {"tree": str(args.new_tree), "bundle": str(args.new_bundle)},
        "rounds": args.rounds,
        "forced_output_tokens": args.tokens,
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for key, by_side in results.items():
        print(
            f"{key}: old {by_side['old']['tokens_per_second']} new "
            f"{by_side['new']['tokens_per_second']} tokens/s ({by_side['new_over_old']}x), "
            f"identical outputs: {by_side['identical_outputs']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
