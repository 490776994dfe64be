"""Export an imported checkpoint's step modules to encoder.onnx / decoder.onnx, and check
them against the checkpoint's own forward pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_export.export import Exporter, StepGraph, export_encoder_and_step
from model_export.importers.stack import (
    POSITION,
    ImportedDecoderStep,
    ImportedEncoder,
    StackParts,
    layer_state_names,
    state_specs,
)
from service.bundle import StateTensor


def state_names(layers: int) -> tuple[str, ...]:
    return (*(n for layer in range(layers) for n in layer_state_names(layer)), POSITION)


def export_graphs(parts: StackParts, bundle_dir: Path, *, exporter: Exporter) -> None:
    """Write encoder.onnx and decoder.onnx (fp32) for these parts into `bundle_dir`."""
    layers = len(parts.decoder_layers)
    states = state_names(layers)
    specs = tuple(StateTensor.model_validate(spec) for spec in state_specs(layers))
    encoder = ImportedEncoder(parts).eval()
    decoder = StepGraph(ImportedDecoderStep(parts), specs).eval()
    # Distinct sizes (B=3, S=7, T=4) and unequal lengths and positions, so that no axis is
    # traced as a constant.
    src_ids = torch.randint(4, 12, (3, 7), dtype=torch.long)
    src_lengths = torch.tensor([7, 5, 2], dtype=torch.long)
    with torch.no_grad():
        memory, *initial = encoder(src_ids, src_lengths)
    step_states = []
    for name, value in zip(states, initial, strict=True):
        if name.startswith("self_"):
            value = torch.randn(value.shape[0], value.shape[1], 4, value.shape[3])
        step_states.append(value)
    step_states[-1] = torch.tensor([4, 2, 0], dtype=torch.long)
    mask = torch.arange(7).unsqueeze(0) < src_lengths.unsqueeze(1)
    prev = torch.tensor([5, 6, 7], dtype=torch.long)
    export_encoder_and_step(
        encoder,
        decoder,
        (src_ids, src_lengths),
        (prev, memory, mask, *step_states),
        specs,
        bundle_dir,
        exporter=exporter,
    )


def step_log_probs(runtime: Any, source: list[int], decoder_in: list[int]) -> np.ndarray:
    """The exported graphs run step by step on one source, fed `decoder_in` (the start
    token, then a target prefix): log-probs (T, V)."""
    src = np.asarray([source], np.int64)
    encoded = runtime.encode(src, np.asarray([len(source)], np.int64))
    states, mask = encoded.states, np.ones((1, len(source)), bool)
    rows = []
    for token in decoder_in:
        out = runtime.step(np.asarray([token], np.int64), encoded.memory, mask, states)
        states = out.states
        rows.append(out.log_probs[0])
    return np.stack(rows)


def allowed_difference(got: np.ndarray, expected: np.ndarray) -> float:
    """Largest |difference| over the ids `got` allows (the graph's suppressed and forced-
    away ids hold the lowest value); steps with a single allowed id (forced) are skipped."""
    worst = 0.0
    for row, reference in zip(got, expected, strict=True):
        allowed = row > np.finfo(np.float32).min / 2
        if allowed.sum() > 1:
            worst = max(worst, float(np.abs(row[allowed] - reference[allowed]).max()))
    return worst


def teacher_forced_difference(
    model: Any, runtime: Any, sources: list[list[int]], targets: list[list[int]], start_id: int
) -> float:
    """Largest |log-prob difference| between the checkpoint's forward pass and the exported
    graphs on the same prefixes, over the ids the graph allows."""
    worst = 0.0
    for source, target in zip(sources, targets, strict=True):
        decoder_in = [start_id, *target]
        with torch.no_grad():
            logits = model(
                input_ids=torch.tensor([source]), decoder_input_ids=torch.tensor([decoder_in])
            ).logits[0]
        expected = torch.log_softmax(logits.float(), dim=-1).numpy()  # (T, V)
        got = step_log_probs(runtime, source, decoder_in)
        worst = max(worst, allowed_difference(got, expected))
    return worst
