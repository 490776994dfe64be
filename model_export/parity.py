"""Parity between eager PyTorch and onnxruntime (CPU provider) for an exported bundle folder.

Checks: encoder outputs and several teacher-forced decoder steps on real inputs (max abs
difference of log-probs, attention and the states, shapes included), and identical greedy
outputs over N examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model_export.base import EncoderDecoder, source_mask
from model_export.ort_model import OrtSeq2Seq, pad_batch
from model_export.train import Example


class ParityError(RuntimeError):
    """The exported graphs disagree with the PyTorch model beyond tolerance."""


def _max_abs_diff(
    torch_values: list[torch.Tensor], ort_values: tuple[np.ndarray, ...], what: str
) -> float:
    """Largest |PyTorch - onnxruntime| over pairs of arrays (0 for empty ones, e.g. a cache
    before the first step); a shape that differs is a disagreement of its own."""
    worst = 0.0
    for expected, actual in zip(torch_values, ort_values, strict=True):
        if tuple(expected.shape) != actual.shape:
            raise ParityError(
                f"{what}: PyTorch shape {tuple(expected.shape)}, onnxruntime {actual.shape}"
            )
        worst = max(worst, float(np.abs(expected.numpy() - actual).max(initial=0.0)))
    return worst


def check_parity(
    model: EncoderDecoder,
    onnx_dir: Path,
    examples: list[Example],
    *,
    steps: int = 8,
    batch_size: int = 16,
    greedy_examples: int = 64,
    tolerance: float = 1e-4,
    log_prob_tolerance: float | None = None,
    threads: int = 2,
) -> dict[str, object]:
    """Return a report; raise ParityError when a difference exceeds `tolerance` (log-probs:
    `log_prob_tolerance`, default the same) or any greedy output differs."""
    if not examples:
        raise ValueError("parity needs at least one example")
    model.eval()
    cfg = model.config
    session = OrtSeq2Seq(onnx_dir, threads=threads)
    batch = examples[:batch_size]
    src_ids, src_lengths = pad_batch([e.src for e in batch], pad_id=cfg.pad_id)
    with torch.no_grad():
        t_src, t_len = torch.from_numpy(src_ids), torch.from_numpy(src_lengths)
        t_memory, *t_states = model.encode(t_src, t_len)
        o_memory, *o_states = session.encode(src_ids, src_lengths)
        memory_diff = _max_abs_diff([t_memory], (o_memory,), "memory")
        state_diff = _max_abs_diff(t_states, tuple(o_states), "initial states")
        mask = source_mask(t_src, t_len)
        # Teacher-forced steps: both sides see the reference target prefix.
        tgt = np.full((len(batch), steps), cfg.pad_id, dtype=np.int64)
        for b, e in enumerate(batch):
            prefix = [cfg.bos_id, *e.tgt][:steps]
            tgt[b, : len(prefix)] = prefix
        log_prob_diff, attention_diff = 0.0, 0.0
        o_state_tuple = tuple(o_states)
        t_state_tuple = tuple(t_states)
        for t in range(steps):
            prev = torch.from_numpy(tgt[:, t])
            t_lp, t_att, *t_new = model.decoder(prev, t_memory, mask, *t_state_tuple)
            t_state_tuple = tuple(t_new)
            o_lp, o_att, o_state_tuple = session.step(
                tgt[:, t], o_memory, mask.numpy(), o_state_tuple
            )
            log_prob_diff = max(log_prob_diff, _max_abs_diff([t_lp], (o_lp,), "log_probs"))
            attention_diff = max(attention_diff, _max_abs_diff([t_att], (o_att,), "attention"))
        last_state_diff = _max_abs_diff(
            list(t_state_tuple), o_state_tuple, f"states after {steps} steps"
        )
        greedy_set = examples[:greedy_examples]
        mismatches = 0
        for start in range(0, len(greedy_set), batch_size):
            chunk = [e.src for e in greedy_set[start : start + batch_size]]
            ids, lengths = pad_batch(chunk, pad_id=cfg.pad_id)
            torch_out = model.greedy(
                torch.from_numpy(ids), torch.from_numpy(lengths), max_length=cfg.max_target_length
            )
            ort_out = session.greedy(
                chunk,
                max_length=cfg.max_target_length,
                pad_id=cfg.pad_id,
                bos_id=cfg.bos_id,
                eos_id=cfg.eos_id,
            )
            mismatches += sum(a != b for a, b in zip(torch_out, ort_out, strict=True))
    lp_tolerance = tolerance if log_prob_tolerance is None else log_prob_tolerance
    report: dict[str, object] = {
        "tolerance": tolerance,
        "log_prob_tolerance": lp_tolerance,
        "batch_size": len(batch),
        "decoder_steps": steps,
        "max_abs_diff_memory": memory_diff,
        "max_abs_diff_init_state": state_diff,
        "max_abs_diff_last_state": last_state_diff,
        "max_abs_diff_log_probs": log_prob_diff,
        "max_abs_diff_attention": attention_diff,
        "greedy_examples": len(greedy_set),
        "greedy_mismatches": mismatches,
        "provider": "CPUExecutionProvider",
    }
    worst = max(memory_diff, state_diff, last_state_diff, attention_diff)
    if worst > tolerance or log_prob_diff > lp_tolerance or mismatches:
        raise ParityError(f"{onnx_dir}: ONNX and PyTorch disagree: {report}")
    return report
