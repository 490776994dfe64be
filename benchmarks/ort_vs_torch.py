"""onnxruntime greedy decoding vs PyTorch eager on the same weights.

    python -m benchmarks.ort_vs_torch OUT_DIR [--steps 32] [--repeats 20]

A model of the default configuration (model_export.config.ModelConfig: GRU 256, vocabulary
4000) with random weights is exported by model_export.export; both sides then encode one
batch and run a fixed number of greedy decoder steps (argmax fed back, no EOS stop), so they
do exactly the same work. Random weights are fine for speed: the arithmetic does not depend
on the values. Same thread count on both sides; the median of `repeats` runs is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.report import environment, print_table, write_json
from model_export.base import source_mask
from model_export.config import ModelConfig
from model_export.export import export_onnx
from model_export.model import Seq2Seq
from model_export.ort_model import OrtSeq2Seq


def _paired_medians(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds of each, run alternately so a shared machine's load hits both alike."""
    first(), second()  # warm-up: allocations, onnxruntime's first-run shape inference
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for run, into in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            run()
            into.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def _torch_greedy(model: Seq2Seq, src_ids: torch.Tensor, lengths: torch.Tensor, steps: int):
    """Eager PyTorch: encode once, then `steps` decoder steps with argmax fed back."""
    with torch.inference_mode():
        memory, *states = model.encode(src_ids, lengths)
        mask = source_mask(src_ids, lengths)  # (B, S)
        prev = torch.full((src_ids.shape[0],), model.config.bos_id, dtype=torch.long)
        for _ in range(steps):
            log_probs, _attention, *states = model.decoder(prev, memory, mask, *states)
            prev = log_probs.argmax(dim=1)  # (B,)
    return prev


def _ort_greedy(
    ort_model: OrtSeq2Seq, src_ids: np.ndarray, lengths: np.ndarray, steps: int, bos: int
):
    """The same loop on the exported graphs through onnxruntime, numpy in between."""
    memory, *states = ort_model.encode(src_ids, lengths)
    mask = np.arange(src_ids.shape[1])[None, :] < lengths[:, None]  # (B, S)
    prev = np.full(src_ids.shape[0], bos, dtype=np.int64)
    state_tuple = tuple(states)
    for _ in range(steps):
        log_probs, _attention, state_tuple = ort_model.step(prev, memory, mask, state_tuple)
        prev = log_probs.argmax(axis=1).astype(np.int64)  # (B,)
    return prev


def ort_vs_torch(
    *,
    batch_sizes: tuple[int, ...] = (1, 32),
    steps: int = 32,
    source_length: int = 24,
    repeats: int = 20,
    threads: int = 2,
    config: ModelConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Time eager PyTorch and onnxruntime greedy decoding of the same random-weight model."""
    config = config or ModelConfig()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = Seq2Seq(config).eval()
    rng = np.random.default_rng(seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp))
        ort_model = OrtSeq2Seq(Path(tmp), threads=threads)
        for batch in batch_sizes:
            lengths = rng.integers(source_length // 2, source_length + 1, size=batch)
            lengths[0] = source_length  # the longest row sets the padded width
            src = rng.integers(6, config.vocab_size, size=(batch, source_length))
            src = np.where(np.arange(source_length)[None, :] < lengths[:, None], src, config.pad_id)
            src_np, len_np = src.astype(np.int64), lengths.astype(np.int64)
            src_t, len_t = torch.from_numpy(src_np), torch.from_numpy(len_np)
            run_torch = partial(_torch_greedy, model, src_t, len_t, steps)
            run_ort = partial(_ort_greedy, ort_model, src_np, len_np, steps, config.bos_id)
            same = bool((run_torch().numpy() == run_ort()).all())
            eager, onnx = _paired_medians(run_torch, run_ort, repeats)
            rows.append(
                {
                    "batch_size": batch,
                    "steps": steps,
                    "torch_eager_seconds": round(eager, 6),
                    "onnxruntime_seconds": round(onnx, 6),
                    "torch_ms_per_step": round(1000 * eager / steps, 4),
                    "onnxruntime_ms_per_step": round(1000 * onnx / steps, 4),
                    "speedup": round(eager / onnx, 3),
                    "same_last_tokens": same,
                }
            )
    return {
        "model": {
            "cell": config.cell,
            "hidden_size": config.hidden_size,
            "embedding_size": config.embedding_size,
            "vocab_size": config.vocab_size,
            "attention_score": config.attention_score,
            "weights": f"random (torch seed {seed})",
        },
        "threads": threads,
        "source_length": source_length,
        "repeats": repeats,
        "torch": torch.__version__,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    result = ort_vs_torch(steps=args.steps, repeats=args.repeats, threads=args.threads)
    print_table(
        ["batch", "torch ms/step", "onnxruntime ms/step", "speedup"],
        [
            [r["batch_size"], r["torch_ms_per_step"], r["onnxruntime_ms_per_step"], r["speedup"]]
            for r in result["rows"]
        ],
    )
    write_json(args.out_dir / "ort_vs_torch.json", {"environment": environment(), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
