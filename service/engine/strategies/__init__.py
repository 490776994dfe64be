"""Decoding strategies behind one interface (`base.py`); importing this package registers
them. Add a strategy: one module here, one import line below."""

from service.engine.strategies import beam, greedy, hf_beam, sampling  # noqa: F401  (registers)
from service.engine.strategies.base import (
    Advance,
    Hypothesis,
    SearchContext,
    SearchStrategy,
    StepView,
    length_penalty,
    make_search,
    registered,
    strategy_name,
)

__all__ = [
    "Advance",
    "Hypothesis",
    "SearchContext",
    "SearchStrategy",
    "StepView",
    "length_penalty",
    "make_search",
    "registered",
    "strategy_name",
]
