"""Beam search over one request: starts on one row, expands to `beam_size` rows.

Hypotheses are kept as back-pointers (one small array per step), not as copied token
lists, so a step costs O(beam) Python work plus one top-k over the request's rows.
Stops when `beam_size` hypotheses have finished, when (without a length penalty) no live
hypothesis can beat the n-best finished ones any more, or at `max_output_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from service.engine.strategies.base import (
    FINISHED,
    Advance,
    Hypothesis,
    SearchContext,
    StepView,
    length_penalty,
    register,
    top_columns,
)
from service.params import DecodingParams


@dataclass(frozen=True)
class _Step:
    """The live rows after one step (row j of this step continues row parents[j] of the
    previous one)."""

    parents: np.ndarray  # (r,) int64
    tokens: np.ndarray  # (r,) int64
    scores: np.ndarray  # (r,) float64, each token's log-prob
    attention: np.ndarray | None  # (r, S) when kept


@dataclass(frozen=True)
class _Ended:
    score: float  # total / length penalty
    total: float  # sum of log-probs, EOS included when it ended by EOS
    steps: int  # how many of self._steps its tokens span
    row: int  # its row in self._steps[steps - 1]
    reason: str  # "eos" | "length"


class _Candidates(NamedTuple):
    order: np.ndarray  # (<= 2 * beam,) indices into the arrays below, best first
    totals: np.ndarray  # (r * width,) float64, the live row's total + the token's log-prob
    parents: np.ndarray  # (r * width,) the live row each continues
    tokens: np.ndarray  # (r * width,) the token
    log_probs: np.ndarray  # (r * width,) float64, the token's log-prob


@register("beam")
class BeamSearch:
    @staticmethod
    def applies(params: DecodingParams) -> bool:
        return params.beam_size > 1 and (params.defaults is None or params.defaults.beam == "gnmt")

    def __init__(self, context: SearchContext) -> None:
        self._context = context
        self._totals = np.zeros(1, np.float64)  # (r,) sum of log-probs of each live row
        self._steps: list[_Step] = []
        self._ended: list[_Ended] = []
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def generated_tokens(self) -> int:
        return len(self._steps)

    def _penalty(self, length: int) -> float:
        """What a hypothesis of `length` tokens (EOS included) has its total divided by."""
        return length_penalty(length, self._context.params.length_penalty)

    def _end(self, total: float, steps: int, row: int, reason: str) -> None:
        length = steps + (1 if reason == "eos" else 0)
        self._ended.append(_Ended(total / self._penalty(length), total, steps, row, reason))

    def _candidates(self, step: StepView) -> _Candidates:
        """The 2 * beam best continuations of the live rows, best first."""
        log_probs = step.log_probs
        k = self._context.params.beam_size
        rows, vocab = log_probs.shape  # (r, V)
        width = min(2 * k, vocab)  # at most r <= k candidates are EOS: k live ones remain
        if vocab > width:
            top = top_columns(log_probs, width)  # (r, width)
        else:
            top = np.broadcast_to(np.arange(vocab), (rows, vocab))
        top_log_probs = np.take_along_axis(log_probs, top, axis=1).astype(np.float64)
        totals = (self._totals[:, None] + top_log_probs).ravel()  # (r * width,)
        parents_all = np.repeat(np.arange(rows), top.shape[1])
        tokens_all = step.token_ids(top).ravel()  # sorted columns: same order as their ids
        # Best first; ties broken by parent row, then token id, so results are deterministic.
        order = np.lexsort((tokens_all, parents_all, -totals))[: 2 * k]
        return _Candidates(order, totals, parents_all, tokens_all, top_log_probs.ravel())

    def advance(self, step: StepView) -> Advance:
        context = self._context
        k = context.params.beam_size
        order, totals, parents_all, tokens_all, log_probs_all = self._candidates(step)
        steps_before = len(self._steps)
        keep: list[int] = []
        for index in order.tolist():
            if int(tokens_all[index]) == context.eos_id:
                self._end(float(totals[index]), steps_before, int(parents_all[index]), "eos")
                continue
            keep.append(index)
            if len(keep) == k:
                break
        chosen = np.asarray(keep, np.int64)
        parents = parents_all[chosen]
        tokens = tokens_all[chosen].astype(np.int64)
        attention = None
        if context.params.return_attention:
            attention = step.attention[parents, : context.source_length].copy()
        self._steps.append(_Step(parents, tokens, log_probs_all[chosen], attention))
        self._totals = totals[chosen]
        self._done = self._should_stop()
        if self._done:
            return FINISHED
        return Advance(parents, tokens, ())

    def _should_stop(self) -> bool:
        params = self._context.params
        if len(self._ended) >= params.beam_size:
            return True
        if len(self._steps) >= params.max_output_tokens:
            for row, total in enumerate(self._totals.tolist()):
                self._end(total, len(self._steps), row, "length")
            return True
        if params.length_penalty == 0.0 and len(self._ended) >= params.n_best:
            # Without a penalty, scores only fall as hypotheses grow: nothing live can win.
            kept = sorted(e.score for e in self._ended)[-params.n_best]
            return float(self._totals.max()) <= kept
        return False

    def _hypothesis(self, ended: _Ended) -> Hypothesis:
        """Follow the back-pointers from the hypothesis' last row to the first step."""
        tokens: list[int] = []
        scores: list[float] = []
        attention: list[np.ndarray] = []
        row = ended.row
        for step in reversed(self._steps[: ended.steps]):
            tokens.append(int(step.tokens[row]))
            scores.append(float(step.scores[row]))
            if step.attention is not None:
                attention.append(step.attention[row])
            row = int(step.parents[row])
        return Hypothesis(
            token_ids=tuple(reversed(tokens)),
            token_scores=tuple(reversed(scores)),
            attention=np.stack(attention[::-1]) if attention else None,
            score=ended.score,
            finish_reason=ended.reason,
        )

    def hypotheses(self) -> tuple[Hypothesis, ...]:
        n_best = self._context.params.n_best
        ranked = sorted(self._ended, key=lambda e: e.score, reverse=True)
        if len(ranked) < n_best and self._steps:  # stopped early by a deadline or failure
            live = [
                _Ended(
                    total / self._penalty(len(self._steps)),
                    total,
                    len(self._steps),
                    row,
                    "length",
                )
                for row, total in enumerate(self._totals.tolist())
            ]
            ranked += sorted(live, key=lambda e: e.score, reverse=True)
        return tuple(self._hypothesis(e) for e in ranked[:n_best])
