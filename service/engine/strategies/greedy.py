"""Greedy decoding: one row; the argmax the engine computed for the whole batch is taken."""

from __future__ import annotations

import numpy as np

from service.engine.strategies.base import (
    FINISHED,
    Advance,
    Hypothesis,
    SearchContext,
    StepView,
    register,
)
from service.params import DecodingParams

_FIRST_ROW = np.zeros(1, np.int64)


class SingleRowSearch:
    """What greedy and sampling share: one row, one hypothesis; subclasses pick the token."""

    def __init__(self, context: SearchContext) -> None:
        self._context = context
        self._ids: list[int] = []
        self._scores: list[float] = []
        self._attention: list[np.ndarray] = []
        self._eos_log_prob = 0.0  # counted in the score, as beam search counts it
        self._reason = ""

    def choose(self, step: StepView) -> tuple[int, float]:
        """The next token of the row and its log-prob."""
        raise NotImplementedError

    @property
    def done(self) -> bool:
        return bool(self._reason)

    def generated_tokens(self) -> int:
        return len(self._ids)

    def advance(self, step: StepView) -> Advance:
        token, score = self.choose(step)
        context = self._context
        if token == context.eos_id:
            self._reason = "eos"
            self._eos_log_prob = score
            return FINISHED
        self._ids.append(token)
        self._scores.append(score)
        if context.params.return_attention:
            self._attention.append(step.attention[0, : context.source_length].copy())
        if len(self._ids) >= context.params.max_output_tokens:
            self._reason = "length"
            return Advance(FINISHED.parents, FINISHED.next_ids, ((token, score),))
        return Advance(_FIRST_ROW, np.array([token], np.int64), ((token, score),))

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


@register("greedy")
class GreedySearch(SingleRowSearch):
    @staticmethod
    def applies(params: DecodingParams) -> bool:
        return params.beam_size == 1 and not params.sampling

    def choose(self, step: StepView) -> tuple[int, float]:
        return int(step.best_ids[0]), float(step.best_log_probs[0])
