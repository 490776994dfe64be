"""Inline formatting carried from a source sentence onto its translation.

A sentence that wears one style gives its whole translation that style. A sentence with
several (`Click **here** now`) needs to know which translated words came from which source
words: `WordLink`s, made from the model's attention (`align.py`) or by any other aligner.
Each translated word takes the style that holds most of the weight of the source characters
it is linked to; a word with no link takes its neighbours' style when both wear the same
one, else the sentence's main style; the spaces between two words of different styles take
the sentence's main style when one of them wears it, so `la voiture **rouge** et` keeps its
spaces plain.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.formats.units import Run, StyledText, merge_runs

# A word of a translation: letters and digits with inner apostrophes and hyphens
# (l’outil, command-line), or one punctuation mark, which is styled on its own.
WORD = re.compile(r"[\w’'\-]+|[^\w\s]")


@dataclass(frozen=True)
class StyleSpan:
    start: int  # characters [start, end) of the source sentence
    end: int
    style: int


@dataclass(frozen=True)
class WordLink:
    start: int  # characters [start, end) of the translation
    end: int
    sources: tuple[tuple[int, int, float], ...]  # source characters [start, end) and weight


@dataclass(frozen=True)
class Translation:
    text: str  # the translated sentence
    links: tuple[WordLink, ...] = ()  # empty: no alignment (one style, or none available)


def main_style(spans: Sequence[StyleSpan]) -> int:
    """The style over most characters (the first of equals)."""
    sizes: dict[int, int] = {}
    for span in spans:
        sizes[span.style] = sizes.get(span.style, 0) + span.end - span.start
    return max(sizes, key=lambda style: sizes[style])


def restyle(
    spans: Sequence[StyleSpan],
    translation: Translation,
    *,
    source: str = "",
    verbatim: frozenset[int] = frozenset(),
) -> StyledText:
    """The translation as runs in the source sentence's styles. A `verbatim` style (inline
    code) goes to where its exact source text appears in the translation, and nowhere else."""
    text = translation.text
    styles = {span.style for span in spans if span.end > span.start}
    main = main_style(spans)
    if len(styles) <= 1 or not text:
        return merge_runs([Run(text, main)])
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    voted = _vote(words, spans, translation.links)
    voted = [None if style in verbatim else style for style in voted]
    base = main if main not in verbatim else _first_other(spans, verbatim, main)
    chosen = _fill(voted, base)
    chars = [base] * len(text)
    position = 0
    for index, (start, end) in enumerate(words):
        chars[position:start] = [_gap_style(chosen, index, base)] * (start - position)
        chars[start:end] = [chosen[index]] * (end - start)
        position = end
    for start, end, style in _verbatim_places(spans, text, source, verbatim):
        chars[start:end] = [style] * (end - start)
    runs = [Run(char, style) for char, style in zip(text, chars, strict=True)]
    return merge_runs(runs)


def _verbatim_places(
    spans: Sequence[StyleSpan], text: str, source: str, verbatim: frozenset[int]
) -> list[tuple[int, int, int]]:
    """Where each verbatim span's exact text is found in the translation, in order."""
    places: list[tuple[int, int, int]] = []
    cursor = 0
    for span in spans:
        term = source[span.start : span.end].strip()
        if span.style not in verbatim or not term:
            continue
        found = text.find(term, cursor)
        if found < 0:
            found = text.find(term)
        if found >= 0:
            places.append((found, found + len(term), span.style))
            cursor = found + len(term)
    return places


def _first_other(spans: Sequence[StyleSpan], verbatim: frozenset[int], main: int) -> int:
    return next((span.style for span in spans if span.style not in verbatim), main)


def _vote(
    words: Sequence[tuple[int, int]], spans: Sequence[StyleSpan], links: Sequence[WordLink]
) -> list[int | None]:
    """Each word's style by the weight of the source characters its links point at."""
    weights: list[dict[int, float]] = [{} for _ in words]
    starts = [start for start, _ in words]
    for link in links:
        first = _first_word_ending_after(words, link.start)
        for index in range(first, len(words)):
            if starts[index] >= link.end:
                break
            for source_start, source_end, weight in link.sources:
                for span in spans:
                    overlap = min(source_end, span.end) - max(source_start, span.start)
                    if overlap > 0:
                        share = weight * overlap / (source_end - source_start)
                        weights[index][span.style] = weights[index].get(span.style, 0.0) + share
    return [max(w, key=lambda style: w[style]) if w else None for w in weights]


def _first_word_ending_after(words: Sequence[tuple[int, int]], position: int) -> int:
    low, high = 0, len(words)
    while low < high:
        middle = (low + high) // 2
        if words[middle][1] <= position:
            low = middle + 1
        else:
            high = middle
    return low


def _fill(chosen: list[int | None], main: int) -> list[int]:
    """A word without a link takes the style of its neighbours when both wear the same one
    (inside a bold phrase), else the main style."""
    filled: list[int] = []
    for index, style in enumerate(chosen):
        if style is None:
            left = filled[-1] if filled else main
            right = next((s for s in chosen[index + 1 :] if s is not None), main)
            style = left if left == right else main
        filled.append(style)
    return filled


def _gap_style(chosen: Sequence[int], index: int, main: int) -> int:
    """The style of the characters before word `index` (spaces, usually)."""
    if index == 0:
        return main
    left, right = chosen[index - 1], chosen[index]
    if left == right:
        return left
    return main if main in (left, right) else left
