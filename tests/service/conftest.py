"""Factories for the service's unit tests: manifests, requests, policies, engines."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.engine.core import EngineCore
from service.engine.policy import BatchingPolicy, PolicyConfig, make_policy
from service.engine.queue import RequestQueue
from service.engine.requests import GenerationOutput, Request, TokenEvent
from service.errors import ServiceError
from service.params import DecodingParams


class CollectingListener:
    """A RequestListener that keeps what the engine delivers."""

    def __init__(self) -> None:
        self.tokens: list[TokenEvent] = []
        self.output: GenerationOutput | None = None
        self.error: ServiceError | None = None
        self.done = threading.Event()

    def on_token(self, event: TokenEvent) -> None:
        self.tokens.append(event)

    def on_finish(self, output: GenerationOutput) -> None:
        self.output = output
        self.done.set()

    def on_error(self, error: ServiceError) -> None:
        self.error = error
        self.done.set()


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
    beam_size: int = 1,
    name: str = "",
) -> Request:
    return Request(
        request_id=name or f"r{length}",
        source_ids=np.arange(4, 4 + length, dtype=np.int64),
        params=DecodingParams(max_output_tokens=max_output_tokens, beam_size=beam_size),
        listener=CollectingListener(),
        deadline=deadline,
        arrival=arrival,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_policy_for_test(
    clock: FakeClock | None = None, name: str = "continuous", **overrides: Any
) -> BatchingPolicy:
    config = {"max_batch_size": 4, "max_queue_delay": 0.01, "max_bypass_delay": 0.05, **overrides}
    return make_policy(name, PolicyConfig(**config), clock=clock or FakeClock())


def make_engine(runtime: Any, max_batch_size: int = 4, policy: str = "continuous") -> EngineCore:
    """An engine core over a real (or deliberately broken) runtime, no idle delay."""
    return EngineCore(
        runtime,
        make_policy(policy, PolicyConfig(max_batch_size=max_batch_size, max_queue_delay=0.0)),
        RequestQueue(max_size=64),
    )


def run_until_idle(engine: EngineCore, max_steps: int = 10_000) -> None:
    for _ in range(max_steps):
        if not engine.has_work:
            return
        engine.step()
    raise AssertionError("engine did not go idle")
