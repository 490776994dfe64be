"""Decoding strategies: greedy and beam search behind one small interface.

A strategy owns one request's hypotheses. Each step the engine hands it the block of rows the
request occupies (`StepView`) and gets back an `Advance`: which of those rows continue (as
parents, possibly repeated, which is how a beam expands and reorders) and the token each
continuing row feeds to the next step. The engine gathers the batch's arrays with the parents
of all requests at once; strategies never touch arrays outside their block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

EMPTY_ROWS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Hypothesis:
    token_ids: tuple[int, ...]  # generated ids, EOS excluded
    token_scores: tuple[float, ...]  # log-prob of each generated id
    attention: np.ndarray | None  # (T, S) when asked, T = len(token_ids)
    score: float  # sum of token log-probs, EOS included, divided by the length penalty
    finish_reason: str  # "eos" | "length"


@dataclass(frozen=True)
class StepView:
    """One request's rows of a decoder step's outputs (views, not copies)."""

    log_probs: np.ndarray  # (r, V)
    attention: np.ndarray  # (r, S_batch); this request's source is the first S columns
    best_ids: np.ndarray  # (r,) argmax of each row, computed once for the whole batch
    best_log_probs: np.ndarray  # (r,) their log-probs


@dataclass(frozen=True)
class Advance:
    parents: np.ndarray  # (r',) rows of the request's block that continue, in new order
    next_ids: np.ndarray  # (r',) int64, the token each continuing row feeds next
    new_tokens: tuple[tuple[int, float], ...]  # streamed now: (token id, log-prob)


class SearchStrategy(Protocol):
    @property
    def done(self) -> bool: ...

    def advance(self, step: StepView) -> Advance: ...

    def hypotheses(self) -> tuple[Hypothesis, ...]:
        """The final hypotheses, best first (only valid once `done`)."""
        ...

    def generated_tokens(self) -> int:
        """Tokens of the best hypothesis so far (for metrics)."""
        ...


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + |Y|) / 6) ** alpha; 1 when alpha is 0."""
    return 1.0 if alpha == 0.0 else ((5.0 + length) / 6.0) ** alpha


@dataclass(frozen=True)
class SearchConfig:
    eos_id: int
    max_tokens: int  # most generated tokens, EOS included
    source_length: int  # S of this request, to cut attention rows
    keep_attention: bool
    beam_size: int = 1
    n_best: int = 1
    length_penalty: float = 0.0


def make_search(config: SearchConfig) -> SearchStrategy:
    if config.beam_size <= 1:
        return GreedySearch(config)
    return BeamSearch(config)


class GreedySearch:
    """One row; the argmax the engine computed for the whole batch is taken as is."""

    def __init__(self, config: SearchConfig) -> None:
        self._config = config
        self._ids: list[int] = []
        self._scores: list[float] = []
        self._attention: list[np.ndarray] = []
        self._eos_log_prob = 0.0  # counted in the score, as beam search counts it
        self._reason = ""

    @property
    def done(self) -> bool:
        return bool(self._reason)

    def generated_tokens(self) -> int:
        return len(self._ids)

    def advance(self, step: StepView) -> Advance:
        token = int(step.best_ids[0])
        score = float(step.best_log_probs[0])
        if token == self._config.eos_id:
            self._reason = "eos"
            self._eos_log_prob = score
            return Advance(EMPTY_ROWS, EMPTY_ROWS, ())
        self._ids.append(token)
        self._scores.append(score)
        if self._config.keep_attention:
            self._attention.append(step.attention[0, : self._config.source_length].copy())
        if len(self._ids) >= self._config.max_tokens:
            self._reason = "length"
            return Advance(EMPTY_ROWS, EMPTY_ROWS, ((token, score),))
        return Advance(np.zeros(1, np.int64), np.array([token], np.int64), ((token, score),))

    def hypotheses(self) -> tuple[Hypothesis, ...]:
        attention = np.stack(self._attention) if self._attention else None
        return (
            Hypothesis(
                token_ids=tuple(self._ids),
                token_scores=tuple(self._scores),
                attention=attention,
                score=sum(self._scores) + self._eos_log_prob,
                finish_reason=self._reason or "length",
            ),
        )


@dataclass(frozen=True)
class _Partial:
    token_ids: tuple[int, ...]
    token_scores: tuple[float, ...]
    attention: tuple[np.ndarray, ...]
    total: float  # sum of log-probs


class BeamSearch:
    """Beam search over one request: starts on one row, expands to `beam_size` rows.

    Stops when `beam_size` hypotheses have finished, when (without a length penalty) no
    live hypothesis can beat the n-best finished ones any more, or at `max_tokens`.
    """

    def __init__(self, config: SearchConfig) -> None:
        self._config = config
        self._alive: list[_Partial] = [_Partial((), (), (), 0.0)]
        self._finished: list[Hypothesis] = []
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def generated_tokens(self) -> int:
        return len(self._alive[0].token_ids) if self._alive else 0

    def _finish(self, partial: _Partial, reason: str) -> Hypothesis:
        attention = np.stack(partial.attention) if partial.attention else None
        length = len(partial.token_ids) + (1 if reason == "eos" else 0)
        return Hypothesis(
            token_ids=partial.token_ids,
            token_scores=partial.token_scores,
            attention=attention,
            score=partial.total / length_penalty(length, self._config.length_penalty),
            finish_reason=reason,
        )

    def advance(self, step: StepView) -> Advance:
        config = self._config
        k = config.beam_size
        totals = np.array([p.total for p in self._alive], dtype=np.float64)
        candidates = (totals[:, None] + step.log_probs).ravel()  # (r * V,)
        vocab = step.log_probs.shape[1]
        width = min(2 * k, candidates.size)  # at most r <= k are EOS: k live ones remain
        top = np.argpartition(-candidates, width - 1)[:width]
        top = top[np.argsort(-candidates[top], kind="stable")]
        parents: list[int] = []
        next_ids: list[int] = []
        survivors: list[_Partial] = []
        for flat in top.tolist():
            parent, token = divmod(flat, vocab)
            source = self._alive[parent]
            log_prob = float(step.log_probs[parent, token])
            if token == config.eos_id:
                ended = _Partial(
                    source.token_ids, source.token_scores, source.attention, float(candidates[flat])
                )
                self._finished.append(self._finish(ended, "eos"))
                continue
            row_attention = source.attention
            if config.keep_attention:
                row_attention = (
                    *source.attention,
                    step.attention[parent, : config.source_length].copy(),
                )
            survivors.append(
                _Partial(
                    (*source.token_ids, token),
                    (*source.token_scores, log_prob),
                    row_attention,
                    float(candidates[flat]),
                )
            )
            parents.append(parent)
            next_ids.append(token)
            if len(survivors) == k:
                break
        self._alive = survivors
        self._done = self._should_stop()
        if self._done:
            return Advance(EMPTY_ROWS, EMPTY_ROWS, ())
        return Advance(np.asarray(parents, np.int64), np.asarray(next_ids, np.int64), ())

    def _should_stop(self) -> bool:
        config = self._config
        if len(self._finished) >= config.beam_size:
            return True
        if self._alive and len(self._alive[0].token_ids) >= config.max_tokens:
            self._finished.extend(self._finish(p, "length") for p in self._alive)
            return True
        if config.length_penalty == 0.0 and len(self._finished) >= config.n_best:
            # Without a penalty, scores only fall as hypotheses grow: nothing live can win.
            kept = sorted(h.score for h in self._finished)[-config.n_best]
            return max(p.total for p in self._alive) <= kept
        return False

    def hypotheses(self) -> tuple[Hypothesis, ...]:
        ranked = sorted(self._finished, key=lambda h: h.score, reverse=True)
        if len(ranked) < self._config.n_best:  # stopped early by a deadline or failure
            ranked += sorted(
                (self._finish(p, "length") for p in self._alive),
                key=lambda h: h.score,
                reverse=True,
            )
        return tuple(ranked[: self._config.n_best])
