"""Hugging Face `generate()`'s beam search, for imported checkpoints (the model's
`decoding.beam` is "hf"), so that the server returns the outputs their users know.

Where it differs from our beam (`beam.py`), as transformers 5 does it:
- score of an ended hypothesis = sum of log-probs / length ** length_penalty (length
  counts EOS; HF's default penalty 1.0), not GNMT's ((5 + length) / 6) ** alpha;
- of the 2 * beam best candidates of a step, only those among the first `beam` may end
  (an EOS ranked lower is dropped, not kept); at most `beam` ended hypotheses are kept,
  the best;
- stopping (`early_stopping`): "heuristic" (HF's False) stops once `beam` hypotheses ended
  and the best live row's total / current length ** penalty cannot beat the worst of them;
  "full" (True) stops as soon as `beam` ended; "never" measures the live row at the
  longest allowed length when the penalty is positive. At `max_output_tokens` the
  `beam` best candidates end (by length).
Tokens the model forbids at a step (log-prob at the dtype's lowest: a suppressed id, or any
other than a forced one) are never candidates; Hugging Face's -inf ones never win either.
"""

from __future__ import annotations

import numpy as np

from service.engine.strategies.base import FINISHED, Advance, StepView, register
from service.engine.strategies.beam import BeamSearch, _Step
from service.params import DecodingParams

_FORBIDDEN = -1e30  # below this a log-prob is the lowest-finite "never" of a processor


@register("hf_beam")
class HFBeamSearch(BeamSearch):
    @staticmethod
    def applies(params: DecodingParams) -> bool:
        return params.beam_size > 1 and params.defaults is not None and params.defaults.beam == "hf"

    def _penalty(self, length: int) -> float:
        return float(length) ** self._context.params.length_penalty

    def _may_end(self) -> bool:
        """New hypotheses may still enter the ended ones (HF's is_early_stop...)."""
        assert self._context.params.defaults is not None
        full = len(self._ended) >= self._context.params.beam_size
        return not (full and self._context.params.defaults.early_stopping == "full")

    def advance(self, step: StepView) -> Advance:
        context = self._context
        params = context.params
        k = params.beam_size
        order, totals, parents_all, tokens_all, log_probs_all = self._candidates(step)
        steps_before = len(self._steps)
        at_limit = steps_before + 1 >= params.max_output_tokens
        may_end = self._may_end()
        keep: list[int] = []  # live candidates (or, at the limit, those that end by length)
        for rank, index in enumerate(order.tolist()):
            if log_probs_all[index] <= _FORBIDDEN:
                break  # sorted: every later candidate is forbidden too
            ends = at_limit or int(tokens_all[index]) == context.eos_id
            if ends and not (rank < k and may_end):
                continue
            if ends and int(tokens_all[index]) == context.eos_id:
                self._end(float(totals[index]), steps_before, int(parents_all[index]), "eos")
            elif len(keep) < k:
                keep.append(index)
        chosen = np.asarray(keep, np.int64)
        parents = parents_all[chosen]
        tokens = tokens_all[chosen].astype(np.int64)
        attention = None
        if params.return_attention:
            attention = step.attention[parents, : context.source_length].copy()
        self._steps.append(_Step(parents, tokens, log_probs_all[chosen], attention))
        self._totals = totals[chosen]
        if at_limit:
            for row, total in enumerate(self._totals.tolist()):
                self._end(total, len(self._steps), row, "length")
        self._ended = sorted(self._ended, key=lambda e: -e.score)[:k]  # stable: earlier first
        self._done = at_limit or not keep or self._cannot_improve()
        return FINISHED if self._done else Advance(parents, tokens, ())

    def _cannot_improve(self) -> bool:
        params = self._context.params
        assert params.defaults is not None
        if len(self._ended) < params.beam_size:
            return False
        if params.defaults.early_stopping == "full":
            return True
        length = len(self._steps)
        if params.defaults.early_stopping == "never" and params.length_penalty > 0:
            length = params.max_output_tokens
        best_live = float(self._totals[0]) / float(length) ** params.length_penalty
        return best_live <= min(e.score for e in self._ended)
