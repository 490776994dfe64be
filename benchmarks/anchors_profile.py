"""Where an imported bundle's decoding time goes (the profile behind docs/benchmarks.md).

    python -m benchmarks.anchors_profile OUT_DIR --bundle runs/anchors/opus/models/anchor/1 \
        [--int8-bundle runs/anchors/opus/models/anchor/2]

Two views, written to OUT_DIR/anchors_profile.json: the offline engine under cProfile at
greedy and beam 4 with 32 sources together (onnxruntime's share against the engine's
numpy work: state gathers, top-k, EOS rules), and onnxruntime's own per-operator profile
of one decoder step at 32 and 128 rows (matrix products against copies), also of the int8
bundle's decoder when given.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.anchors import held_out_sources
from service.bundle import DECODER_FILE, read_manifest
from service.engine.offline import Seq2SeqEngine


def engine_profile(bundle: Path, beam: int, threads: int, tokens: int) -> dict[str, Any]:
    engine = Seq2SeqEngine(bundle, intra_op_threads=threads, max_batch_size=32 * beam)
    sources = [ids for _, ids in held_out_sources(engine.tokenizer, 32)]
    options = {"beam_size": beam, "min_output_tokens": tokens, "max_output_tokens": tokens}
    engine.generate_batch(sources[:2], **options)  # warm-up
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    engine.generate_batch(sources, **options)
    profile.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    by_function = sorted(
        ((f"{Path(k[0]).name}:{k[2]}", v[2]) for k, v in stats.items()), key=lambda x: -x[1]
    )[:8]
    return {
        "wall_seconds": round(wall, 3),
        "tokens_per_second": round(32 * tokens / wall, 1),
        "top_self_seconds": {name: round(seconds, 3) for name, seconds in by_function},
        "self_share": {name: round(seconds / wall, 3) for name, seconds in by_function},
    }


def operator_profile(bundle: Path, rows: int, threads: int, past: int = 16) -> dict[str, Any]:
    """One decoder step at `rows` rows, `past` cached slots, source length 24."""
    manifest = read_manifest(bundle)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as our runtime
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "anchors_profile")
    session = ort.InferenceSession(
        str(bundle / DECODER_FILE), options, providers=["CPUExecutionProvider"]
    )
    shapes = {i.name: i.shape for i in session.get_inputs()}
    source = 24
    feeds: dict[str, np.ndarray] = {
        "prev_ids": np.full(rows, 5, np.int64),
        "memory": np.zeros((rows, source, manifest.hidden_size), np.float32),
        "src_mask": np.ones((rows, source), bool),
    }
    for state in manifest.states:
        name = f"state_{state.name}"
        if state.name == "position":
            feeds[name] = np.full(rows, past, np.int64)
            continue
        shape = [rows, *[d if isinstance(d, int) else 0 for d in shapes[name][1:]]]
        shape[2] = source if state.source_axis is not None else past
        feeds[name] = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    runs = 5
    for _ in range(runs + 1):
        session.run(None, feeds)
    path = session.end_profiling()
    events = json.loads(Path(path).read_text())
    os.remove(path)
    kernel = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            kernel[event["args"]["op_name"]] += event["dur"]
    total = sum(kernel.values())
    return {
        "rows": rows,
        "ms_per_step": round(total / (runs + 1) / 1000, 2),
        "share_by_operator": {op: round(us / total, 3) for op, us in kernel.most_common(8)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anchors_profile")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--int8-bundle", type=Path, help="also profile this decoder's steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "bundle": str(args.bundle),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "engine": {
            f"{name}_bs32": engine_profile(args.bundle, beam, args.threads, args.tokens)
            for name, beam in (("greedy", 1), ("beam4", 4))
        },
        "decoder_step": [operator_profile(args.bundle, rows, args.threads) for rows in (32, 128)],
    }
    if args.int8_bundle is not None:
        report["int8_bundle"] = str(args.int8_bundle)
        report["int8_decoder_step"] = [
            operator_profile(args.int8_bundle, rows, args.threads) for rows in (32, 128)
        ]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "anchors_profile.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
