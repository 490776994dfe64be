"""Tiny sizes for the benchmark scripts: the plumbing and the JSON shape, in seconds."""

from __future__ import annotations

from benchmarks.suite import Sizes
from model_export.config import ModelConfig


def tiny_sizes(**overrides: object) -> Sizes:
    fields: dict[str, object] = {
        "seconds": 2.0,
        "requests": 40,
        "warmup_requests": 4,
        "offline_requests": 16,
        "idle_requests": 4,
        "max_batch_size": 4,
        "saturation_concurrency": 8,
        "batching_concurrency": 4,
        "sweep_fractions": (0.5, 1.0),
    }
    fields.update(overrides)
    return Sizes(**fields)  # type: ignore[arg-type]


def tiny_model() -> ModelConfig:
    return ModelConfig(vocab_size=64, embedding_size=8, hidden_size=16, max_source_length=16)
