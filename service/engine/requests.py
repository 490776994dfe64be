"""One request = one state object with one lifecycle enum.

The engine thread owns every field except `cancel()`, which any thread may call: it only
sets a flag that the engine reads at the next step boundary.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from service.errors import Cancelled, Expired, InternalError, ServiceError


class RequestStatus(enum.IntEnum):
    WAITING = 0
    RUNNING = 1
    # Everything from here on is finished: `status >= FINISHED_EOS` is the one comparison.
    FINISHED_EOS = 2
    FINISHED_LENGTH = 3
    CANCELLED = 4
    EXPIRED = 5
    FAILED = 6

    @property
    def is_finished(self) -> bool:
        return self >= RequestStatus.FINISHED_EOS


# The one table from a finish reason to what the client sees: a reason string for
# successful finishes, an error type for the others.
FINISH_REASONS: dict[RequestStatus, str] = {
    RequestStatus.FINISHED_EOS: "eos",
    RequestStatus.FINISHED_LENGTH: "length",
}
FINISH_ERRORS: dict[RequestStatus, type[ServiceError]] = {
    RequestStatus.CANCELLED: Cancelled,
    RequestStatus.EXPIRED: Expired,
    RequestStatus.FAILED: InternalError,
}


@dataclass(frozen=True)
class DecodeParams:
    max_output_tokens: int  # hard cap on generated tokens, EOS included
    return_attention: bool = False
    return_scores: bool = False


@dataclass(frozen=True)
class TokenEvent:
    index: int  # 0-based position in the output
    token_id: int
    log_prob: float


@dataclass(frozen=True)
class GenerationOutput:
    token_ids: tuple[int, ...]  # generated ids, EOS excluded
    token_scores: tuple[float, ...]  # log-prob of each generated id
    attention: np.ndarray | None  # (T, S) when asked, T = len(token_ids)
    status: RequestStatus  # FINISHED_EOS or FINISHED_LENGTH
    queue_seconds: float  # arrival -> admitted into the running batch
    compute_seconds: float  # encoder + decoder wall time while this request was in the batch


class RequestListener(Protocol):
    """Where the engine delivers a request's results; called from the engine thread."""

    def on_token(self, event: TokenEvent) -> None: ...

    def on_finish(self, output: GenerationOutput) -> None: ...

    def on_error(self, error: ServiceError) -> None: ...


@dataclass(eq=False)
class Request:
    request_id: str
    source_ids: np.ndarray  # (S,) int64, EOS last
    params: DecodeParams
    listener: RequestListener
    deadline: float | None = None  # time.monotonic() seconds, None = no deadline
    arrival: float = field(default_factory=time.monotonic)
    status: RequestStatus = RequestStatus.WAITING
    admitted_at: float | None = None
    compute_seconds: float = 0.0
    output_ids: list[int] = field(default_factory=list)
    output_scores: list[float] = field(default_factory=list)
    attention_rows: list[np.ndarray] = field(default_factory=list)  # each (S,)
    _cancel_requested: bool = False

    def cancel(self) -> None:
        """Ask the engine to drop this request at its next step boundary (thread-safe)."""
        self._cancel_requested = True

    def abandoned_status(self, now: float) -> RequestStatus | None:
        """CANCELLED or EXPIRED when the request should leave now, else None."""
        if self._cancel_requested:
            return RequestStatus.CANCELLED
        if self.deadline is not None and now >= self.deadline:
            return RequestStatus.EXPIRED
        return None

    @property
    def source_length(self) -> int:
        return int(self.source_ids.shape[0])

    def finish(self, status: RequestStatus, *, detail: str = "") -> None:
        """Move to a finished status and tell the listener exactly once."""
        if self.status.is_finished:
            return
        self.status = status
        if status in FINISH_REASONS:
            queued = (self.admitted_at or self.arrival) - self.arrival
            attention = np.stack(self.attention_rows) if self.attention_rows else None
            self.listener.on_finish(
                GenerationOutput(
                    token_ids=tuple(self.output_ids),
                    token_scores=tuple(self.output_scores),
                    attention=attention,
                    status=status,
                    queue_seconds=queued,
                    compute_seconds=self.compute_seconds,
                )
            )
            return
        message = (
            detail
            or {
                RequestStatus.CANCELLED: "the request was cancelled by its client",
                RequestStatus.EXPIRED: "the deadline passed before decoding finished",
                RequestStatus.FAILED: "the model failed while running this request",
            }[status]
        )
        self.listener.on_error(FINISH_ERRORS[status](message))
