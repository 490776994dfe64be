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

from service.engine.constraints import Constraint, Term
from service.engine.strategies import Hypothesis, SearchStrategy
from service.errors import Cancelled, Expired, InternalError, ServiceError
from service.params import DecodingParams


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


# The one table from an unsuccessful finish to what the client sees. Successful ones carry
# their reason ("eos" or "length") on each hypothesis.
FINISH_ERRORS: dict[RequestStatus, type[ServiceError]] = {
    RequestStatus.CANCELLED: Cancelled,
    RequestStatus.EXPIRED: Expired,
    RequestStatus.FAILED: InternalError,
}


@dataclass(frozen=True)
class TokenEvent:
    index: int  # 0-based position in the output
    token_id: int
    log_prob: float


@dataclass(frozen=True)
class GenerationOutput:
    hypotheses: tuple[Hypothesis, ...]  # n-best, best first
    status: RequestStatus  # FINISHED_EOS or FINISHED_LENGTH (of the best hypothesis)
    queue_seconds: float  # arrival -> admitted into the running batch
    compute_seconds: float  # encoder + decoder wall time while this request was in the batch

    @property
    def best(self) -> Hypothesis:
        return self.hypotheses[0]

    @property
    def token_ids(self) -> tuple[int, ...]:
        return self.best.token_ids


class RequestListener(Protocol):
    """Where the engine delivers a request's results; called from the engine thread."""

    def on_token(self, event: TokenEvent) -> None: ...

    def on_finish(self, output: GenerationOutput) -> None: ...

    def on_error(self, error: ServiceError) -> None: ...


@dataclass(eq=False)
class Request:
    request_id: str
    source_ids: np.ndarray  # (S,) int64, EOS last
    params: DecodingParams  # resolved for the model (max_output_tokens set)
    listener: RequestListener
    deadline: float | None = None  # time.monotonic() seconds, None = no deadline
    arrival: float = field(default_factory=time.monotonic)
    status: RequestStatus = RequestStatus.WAITING
    admitted_at: float | None = None
    compute_seconds: float = 0.0
    constraints: tuple[Constraint, ...] = ()  # initial per-row constraint states
    terms: tuple[Term, ...] = ()  # required terms, rendered verbatim in the text
    search: SearchStrategy | None = None  # set by the engine at admission
    row_constraints: list[tuple[Constraint, ...]] = field(default_factory=list)  # per row
    decode_steps: int = 0  # decoder steps run for it (= slots of a target-axis state)
    vocab: np.ndarray | None = None  # its output ids under a shortlist (sorted); None = all
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

    @property
    def generated_tokens(self) -> int:
        return self.search.generated_tokens() if self.search is not None else 0

    def complete(self) -> None:
        """The search is done: deliver its hypotheses exactly once."""
        if self.status.is_finished or self.search is None:
            return
        hypotheses = self.search.hypotheses()
        best = hypotheses[0]
        self.status = (
            RequestStatus.FINISHED_EOS
            if best.finish_reason == "eos"
            else RequestStatus.FINISHED_LENGTH
        )
        if self.params.rows > 1:  # a beam's tokens are only final now: stream them now
            for index, (token, score) in enumerate(
                zip(best.token_ids, best.token_scores, strict=True)
            ):
                self.listener.on_token(TokenEvent(index=index, token_id=token, log_prob=score))
        queued = (self.admitted_at or self.arrival) - self.arrival
        self.listener.on_finish(
            GenerationOutput(
                hypotheses=hypotheses,
                status=self.status,
                queue_seconds=queued,
                compute_seconds=self.compute_seconds,
            )
        )

    def finish(self, status: RequestStatus, *, detail: str = "") -> None:
        """Leave unsuccessfully (cancelled, expired, failed); tell the listener once."""
        if self.status.is_finished:
            return
        self.status = status
        message = (
            detail
            or {
                RequestStatus.CANCELLED: "the request was cancelled by its client",
                RequestStatus.EXPIRED: "the deadline passed before decoding finished",
                RequestStatus.FAILED: "the model failed while running this request",
            }[status]
        )
        self.listener.on_error(FINISH_ERRORS[status](message))
