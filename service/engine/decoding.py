"""Decoding strategies: choose each row's next token from a step's log-probabilities.

Strategies work on whole arrays; the engine's one per-row loop applies their choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    token_ids: np.ndarray  # (B,) int64, the next token of each row
    log_probs: np.ndarray  # (B,) float32, its log-probability


def greedy(log_probs: np.ndarray) -> Selection:
    """The most likely next token of every row: log_probs (B, V) -> Selection."""
    token_ids = log_probs.argmax(axis=-1)
    rows = np.arange(log_probs.shape[0])
    return Selection(
        token_ids=token_ids.astype(np.int64, copy=False),
        log_probs=log_probs[rows, token_ids].astype(np.float32, copy=False),
    )
