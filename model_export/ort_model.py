"""The exported pair (encoder.onnx, decoder.onnx) run by onnxruntime, with greedy decoding
in numpy: the reference the service's engine must agree with.

It decodes a static batch: every row starts together and runs every step, so states with a
target axis (a growing cache) are the same length in every row and need no padding; the
engine's padding of rows that join later is tested against it (tests/integration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.bundle import (
    DEC_MEMORY,
    DEC_PREV_IDS,
    DEC_SRC_MASK,
    DECODER_FILE,
    ENC_SRC_IDS,
    ENC_SRC_LENGTHS,
    ENCODER_FILE,
)


def pad_batch(seqs: list[list[int]], *, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """-> ids (B, S) int64 padded with pad_id, lengths (B,) int64."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    ids = np.full((len(seqs), int(lengths.max())), pad_id, dtype=np.int64)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = s
    return ids, lengths


class OrtSeq2Seq:
    """Encoder and decoder-step sessions on the CPU execution provider."""

    def __init__(self, bundle_dir: Path, *, threads: int = 2) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(
            str(bundle_dir / ENCODER_FILE), options, providers=providers
        )
        self.decoder = ort.InferenceSession(
            str(bundle_dir / DECODER_FILE), options, providers=providers
        )
        # state_<name> inputs, in graph order (after prev_ids, memory, src_mask)
        self.state_inputs = [i.name for i in self.decoder.get_inputs()[3:]]
        outputs = {o.name for o in self.decoder.get_outputs()}
        # the states the step outputs (new_state_<name>); a constant one is not output
        self.updated = [i for i, name in enumerate(self.state_inputs) if "new_" + name in outputs]

    def encode(self, src_ids: np.ndarray, src_lengths: np.ndarray) -> tuple[np.ndarray, ...]:
        """-> memory (B, S, H), then the decoder's initial states (manifest order)."""
        feeds = {ENC_SRC_IDS: src_ids, ENC_SRC_LENGTHS: src_lengths}
        return tuple(self.encoder.run(None, feeds))

    def step(
        self,
        prev_ids: np.ndarray,
        memory: np.ndarray,
        src_mask: np.ndarray,
        states: tuple[np.ndarray, ...],
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """-> log_probs (B, V), attention (B, S), every state for the next step."""
        feeds = {DEC_PREV_IDS: prev_ids, DEC_MEMORY: memory, DEC_SRC_MASK: src_mask}
        feeds |= dict(zip(self.state_inputs, states, strict=True))
        log_probs, attention, *outputs = self.decoder.run(None, feeds)
        new_states = list(states)  # constant states stay as they are
        for index, value in zip(self.updated, outputs, strict=True):
            new_states[index] = value
        return log_probs, attention, tuple(new_states)

    def greedy(
        self, src: list[list[int]], *, max_length: int, pad_id: int, bos_id: int, eos_id: int
    ) -> list[list[int]]:
        """Greedy decode; each row's ids end at (and include) EOS or stop at max_length."""
        src_ids, src_lengths = pad_batch(src, pad_id=pad_id)
        memory, *states = self.encode(src_ids, src_lengths)
        mask = np.arange(src_ids.shape[1])[None, :] < src_lengths[:, None]  # (B, S)
        prev = np.full(len(src), bos_id, dtype=np.int64)
        finished = np.zeros(len(src), dtype=bool)
        out: list[list[int]] = [[] for _ in src]
        state_tuple = tuple(states)
        for _ in range(max_length):
            log_probs, _, state_tuple = self.step(prev, memory, mask, state_tuple)
            prev = log_probs.argmax(axis=1).astype(np.int64)
            for b in np.flatnonzero(~finished):
                out[b].append(int(prev[b]))
            finished |= prev == eos_id
            if finished.all():
                break
        return out
