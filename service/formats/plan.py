"""Units -> the sentences to translate -> translated units, for every format alike.

Each unit's text is split as a plain-text document is (`service.text.plain`: pysbd
sentences, list markers and spacing kept, over-long sentences cut, a unit that fits the
model sent whole), so a Word paragraph and a plain-text line are translated the same way.
What is kept untranslated (spaces between sentences, markers, a piece with no letter) keeps
its source runs; each translation gets its runs from `restyle`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.errors import InvalidArgument
from service.formats.limits import FileLimits
from service.formats.restyle import StyleSpan, Translation, restyle
from service.formats.units import Run, StyledText, Unit, merge_runs
from service.text.limit import Fits
from service.text.plain import split_text

# One token that is a command-line option, a path, a URL, an address or a file name: kept
# as it is (a table cell holding `--fast` must not come back as `--rapide`).
_CODE_LIKE = re.compile(r"^(?:[-/~$.]|\S*(?:[/\\_=@<>{}]|://|\w\.\w))\S*$")


@dataclass(frozen=True)
class Sentence:
    text: str  # what the model reads
    styled: bool  # wears more than one style: its translation needs word links
    keep: tuple[str, ...] = ()  # parts to reach the translation unchanged (inline code)


@dataclass(frozen=True)
class _Piece:
    start: int  # characters [start, end) of the unit's text
    end: int
    sentence: int | None  # index into FilePlan.sentences, None when kept as is


@dataclass(frozen=True)
class FilePlan:
    units: tuple[Unit, ...]
    sentences: tuple[Sentence, ...]  # in document order; the caller translates these
    _pieces: tuple[tuple[_Piece, ...], ...]  # per unit

    def assemble(self, translations: Sequence[Translation]) -> list[StyledText]:
        """Each unit's runs with its sentences replaced by their translations."""
        if len(translations) != len(self.sentences):
            raise ValueError(
                f"{len(translations)} translations for {len(self.sentences)} sentences"
            )
        out: list[StyledText] = []
        for unit, pieces in zip(self.units, self._pieces, strict=True):
            runs: list[Run] = []
            for piece in pieces:
                spans = _spans(unit.runs, piece.start, piece.end)
                if piece.sentence is None:
                    runs.extend(Run(unit.text[s.start : s.end], s.style) for s in spans)
                else:
                    local = [
                        StyleSpan(s.start - piece.start, s.end - piece.start, s.style)
                        for s in spans
                    ]
                    runs.extend(
                        restyle(
                            local,
                            translations[piece.sentence],
                            source=unit.text[piece.start : piece.end],
                            verbatim=unit.verbatim,
                        )
                    )
            out.append(merge_runs(runs))
        return out


def plan_units(
    units: Sequence[Unit], language: str, fits: Fits, limits: FileLimits | None = None
) -> FilePlan:
    """The sentences of every unit, and where each goes back."""
    limits = limits or FileLimits()
    if len(units) > limits.max_units:
        raise InvalidArgument(
            f"the file has {len(units)} paragraphs and other text blocks; the limit is "
            f"{limits.max_units}: split it into smaller files",
            field="file",
        )
    characters = sum(len(unit.text) for unit in units)
    if characters > limits.max_chars:
        raise InvalidArgument(
            f"the file holds {characters} characters of text; the limit is "
            f"{limits.max_chars}: split it into smaller files",
            field="file",
        )
    sentences: list[Sentence] = []
    pieces: list[tuple[_Piece, ...]] = []
    for unit in units:
        document = split_text(unit.text, language, fits, whole_line=True)
        position = 0
        unit_pieces: list[_Piece] = []
        for piece in document.pieces:
            end = position + len(piece.text)
            index = None
            if piece.translate and not _CODE_LIKE.match(piece.text):
                index = len(sentences)
                spans = _spans(unit.runs, position, end)
                keep = tuple(
                    dict.fromkeys(
                        unit.text[s.start : s.end].strip()
                        for s in spans
                        if s.style in unit.verbatim and unit.text[s.start : s.end].strip()
                    )
                )
                styled = len({s.style for s in spans}) > 1
                sentences.append(Sentence(piece.text, styled=styled, keep=keep))
            unit_pieces.append(_Piece(position, end, index))
            position = end
        pieces.append(tuple(unit_pieces))
    return FilePlan(tuple(units), tuple(sentences), tuple(pieces))


def _spans(runs: Sequence[Run], start: int, end: int) -> list[StyleSpan]:
    """The runs' styles over characters [start, end) of the unit's text."""
    spans: list[StyleSpan] = []
    position = 0
    for run in runs:
        run_end = position + len(run.text)
        low, high = max(start, position), min(end, run_end)
        if low < high:
            spans.append(StyleSpan(low, high, run.style))
        position = run_end
        if position >= end:
            break
    return spans
