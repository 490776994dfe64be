"""Factories for the service's unit tests: manifests, requests, schedulers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.offline import CollectingListener
from service.engine.requests import DecodeParams, Request
from service.engine.scheduler import Scheduler, SchedulerConfig


def manifest_fields(**overrides: Any) -> dict[str, Any]:
    """A valid translate manifest (without `files`), overridable per test."""
    fields: dict[str, Any] = {
        "name": "translate-en-fr",
        "version": 1,
        "task": "translate",
        "languages": {"source": "en", "target": "fr"},
        "architecture": "rnn",
        "cell": "gru",
        "attention": {"kind": "soft", "scope": "global", "score": "general"},
        "special_tokens": {"pad_id": 0, "bos_id": 1, "eos_id": 2, "unk_id": 3},
        "vocab_size": 100,
        "hidden_size": 8,
        "max_source_length": 16,
        "max_target_length": 16,
        "states": [{"name": "hidden", "batch_axis": 0}],
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A folder laid out as <name>/<version>/ with the three required files."""
    folder = tmp_path / "translate-en-fr" / "1"
    folder.mkdir(parents=True)
    for name in ("encoder.onnx", "decoder.onnx", "tokenizer.json"):
        (folder / name).write_bytes(name.encode() * 10)
    return folder


def make_request(
    length: int = 3,
    *,
    deadline: float | None = None,
    arrival: float = 0.0,
    max_output_tokens: int = 8,
) -> Request:
    return Request(
        request_id=f"r{length}",
        source_ids=np.arange(4, 4 + length, dtype=np.int64),
        params=DecodeParams(max_output_tokens=max_output_tokens),
        listener=CollectingListener(),
        deadline=deadline,
        arrival=arrival,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_scheduler(clock: FakeClock | None = None, **overrides: Any) -> Scheduler:
    config = {"max_batch_size": 4, "max_queue_size": 8, "max_queue_delay": 0.01, **overrides}
    return Scheduler(SchedulerConfig(**config), clock=clock or FakeClock())
