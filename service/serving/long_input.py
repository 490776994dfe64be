"""Summarize and Answer over texts longer than the model's source limit: pick what fits, say so.

- Summarize keeps the leading sentences of `text` that fit ("truncated"): descriptions and
  articles put what a summary needs first (the lead baseline of docs/models.md).
- Answer keeps the run of consecutive `context` sentences that fits and shares the most words
  with the question ("window"), words compared by their first five letters so that
  "maintains" meets "maintained"; ties go to the earlier window.

Sentences come from the same segmenter as documents, and a single sentence over the limit is
cut as documents cut it, so the part used always starts and ends on a boundary. The response
names the field, the method and the character range used; nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from seq2seq_client.tasks import TaskSpec
from service.text.plain import split_text

_WORD = re.compile(r"\w{3,}")


@dataclass(frozen=True)
class InputUsed:
    field: str  # the request field that was shortened ("text", "context")
    method: str  # "truncated" (leading sentences) or "window" (best-matching sentences)
    start: int  # character offsets of the part used, in the field as sent
    end: int
    total: int  # characters of the field as sent


def fit_long_input(
    spec: TaskSpec, fields: Mapping[str, str], count: Callable[[str], int], limit: int
) -> tuple[dict[str, str], InputUsed | None]:
    """`fields` with `spec.source_field` cut to what fits the model, and what was used."""
    out = dict(fields)
    if count(spec.to_source(out)) <= limit:
        return out, None
    name = spec.source_field
    text = fields[name]

    def fits(part: str) -> bool:
        return count(spec.to_source({**fields, name: part})) <= limit

    spans = _sentence_spans(text, fits)
    if not spans or not fits(text[spans[0][0] : spans[0][1]]):
        return out, None  # not even one piece fits (e.g. the question alone): the plane refuses
    if spec.answers:
        start, end = _best_window(text, spans, fits, _stems(fields["question"]))
        method = "window"
    else:
        start, end = _window_from(text, spans, 0, fits)
        method = "truncated"
    out[name] = text[start:end]
    return out, InputUsed(field=name, method=method, start=start, end=end, total=len(text))


def _sentence_spans(text: str, fits: Callable[[str], bool]) -> list[tuple[int, int]]:
    """(start, end) of every sentence (or piece of an over-long one), in order."""
    spans, position = [], 0
    for piece in split_text(text, "en", fits).pieces:
        if piece.translate:
            spans.append((position, position + len(piece.text)))
        position += len(piece.text)
    return spans


def _window_from(
    text: str, spans: list[tuple[int, int]], first: int, fits: Callable[[str], bool]
) -> tuple[int, int]:
    """The longest run of sentences starting at `first` that fits."""
    start, end = spans[first]
    for _, candidate_end in spans[first + 1 :]:
        if not fits(text[start:candidate_end]):
            break
        end = candidate_end
    return start, end


def _stems(text: str) -> set[str]:
    return {word[:5] for word in _WORD.findall(text.lower())}


def _best_window(
    text: str, spans: list[tuple[int, int]], fits: Callable[[str], bool], words: set[str]
) -> tuple[int, int]:
    best, best_score = (spans[0][0], spans[0][1]), -1
    for first in range(len(spans)):
        start, end = _window_from(text, spans, first, fits)
        score = len(words & _stems(text[start:end]))
        if score > best_score:
            best, best_score = (start, end), score
    return best
