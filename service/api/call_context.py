"""The record of the RPC a task is handling, shared by the interceptor and the servicer.

The interceptor opens a `CallRecord` per call; the servicer adds what only it knows
(model, version, timings, the error message); the interceptor writes the access line.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class CallRecord:
    """What one RPC's access-log line says; the servicer fills in the model fields."""

    request_id: str
    rpc: str  # method name, e.g. "Translate"
    service: str
    peer: str
    model: str = ""
    version: int = 0
    queue_seconds: float | None = None
    compute_seconds: float | None = None
    error: str = ""  # the status message when the call failed
    holds_drain: bool = False  # counted in flight by service.api.traffic.Traffic


_current: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "seq2seq_call", default=None
)


def current_call() -> CallRecord | None:
    """The record of the RPC this task is handling (None outside an intercepted call)."""
    return _current.get()


def set_current_call(record: CallRecord) -> None:
    """Make `record` this task's call (the interceptor does, once per RPC)."""
    _current.set(record)
