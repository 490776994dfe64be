"""Cutting a sentence that is over a model's source limit into pieces that fit.

Never refused, never truncated: every character of the sentence lands in exactly one piece
or in the whitespace kept between two pieces. The cut is the last boundary that still fits,
tried in this order of preference:

1. after clause punctuation followed by whitespace (`,` `;` `:` `)` `]` `»` `”` and the
   dashes ` - ` ` – ` ` — `), so each piece is a clause the model can translate on its own;
2. at any whitespace (between two words);
3. between two characters, for a run without whitespace (a long URL or a checksum).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from service.text.segment import Span

Fits = Callable[[str], bool]  # whether a piece is within the model's source limit

_CLAUSE = re.compile(r"(?<=[,;:)\]»”])\s+|\s+(?=[-–—]\s)")
_SPACE = re.compile(r"\s+")


def split_to_fit(text: str, fits: Fits) -> list[Span]:
    """Spans of `text` (no surrounding whitespace) that each fit; one span if it all fits."""
    spans: list[Span] = []
    start = _skip_space(text, 0)
    end = len(text.rstrip())
    while start < end:
        if fits(text[start:end]):
            spans.append(Span(start, end))
            break
        cut = _last_fitting_cut(text, start, end, fits)
        spans.append(Span(start, cut))
        start = _skip_space(text, cut)
    return spans


def _last_fitting_cut(text: str, start: int, end: int, fits: Fits) -> int:
    """Where the piece that begins at `start` ends: the best boundary that fits."""
    for pattern in (_CLAUSE, _SPACE):
        cuts = [m.start() for m in pattern.finditer(text, start, end) if m.start() > start]
        best = _longest(cuts, lambda cut: fits(text[start:cut]))
        if best is not None:
            return best
    chars = list(range(start + 1, end))
    return _longest(chars, lambda cut: fits(text[start:cut])) or start + 1


def _longest(cuts: list[int], ok: Callable[[int], bool]) -> int | None:
    """The largest cut with ok(cut), by binary search (a longer piece never fits better)."""
    low, high, best = 0, len(cuts) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if ok(cuts[middle]):
            best, low = cuts[middle], middle + 1
        else:
            high = middle - 1
    return best


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
