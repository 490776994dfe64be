"""Random sampling with temperature, top-k and top-p (nucleus), reproducible by seed.

Each request draws from its own generator (PCG64 seeded from `seed`, or from the operating
system when no seed is given), so the same seed gives the same output whatever else shares
the batch. The reported log-prob of a token is the MODEL's (before temperature and
filtering), like greedy's, so scores stay comparable across strategies.
"""

from __future__ import annotations

import numpy as np

from service.engine.strategies.base import SearchContext, StepView, register
from service.engine.strategies.greedy import SingleRowSearch
from service.params import DecodingParams


def filtered_probabilities(
    log_probs: np.ndarray, *, temperature: float, top_k: int, top_p: float
) -> np.ndarray:
    """log_probs (V,) -> probabilities (V,) after temperature, top-k and top-p; sums to 1."""
    scaled = log_probs.astype(np.float64) / temperature  # (V,)
    if 0 < top_k < scaled.size:
        cutoff = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled >= cutoff, scaled, -np.inf)
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")  # most likely first
        cumulative = np.cumsum(probs[order])
        keep = int(np.searchsorted(cumulative, top_p)) + 1  # smallest set with mass >= top_p
        kept = np.zeros_like(probs)
        kept[order[:keep]] = probs[order[:keep]]
        probs = kept / kept.sum()
    return probs


@register("sampling")
class SamplingSearch(SingleRowSearch):
    @staticmethod
    def applies(params: DecodingParams) -> bool:
        return params.sampling and params.beam_size == 1

    def __init__(self, context: SearchContext) -> None:
        super().__init__(context)
        self._rng = np.random.Generator(np.random.PCG64(context.params.seed))

    def choose(self, step: StepView) -> tuple[int, float]:
        params = self._context.params
        row = step.log_probs[0]  # (V,), or (K,) under a shortlist
        probs = filtered_probabilities(
            row,
            temperature=params.temperature if params.temperature is not None else 1.0,
            top_k=params.top_k,
            top_p=params.top_p if params.top_p is not None else 1.0,
        )
        # Inverse CDF with one uniform draw: the same draws give the same tokens.
        cumulative = np.cumsum(probs)
        token = int(np.searchsorted(cumulative, self._rng.random() * cumulative[-1], "right"))
        # a column of the step's log-probs: the token id, or its place in a shortlist
        column = min(token, row.size - 1)
        return int(step.token_ids(np.asarray(column))), float(row[column])
