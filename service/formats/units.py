"""What every format turns a file into: units of formatted text, and what it puts back.

A `Unit` is a block a reader sees as one piece of text (a paragraph, a heading, a table
cell, a footnote, a speaker note, an image's alt text, a title, a subtitle cue). Its `Run`s
carry the inline formatting: `style` is an index the format defines (a Word run's
properties, an HTML element chain, a Markdown emphasis); the format layer never looks
inside it, so one plan and one alignment serve every format. A translated unit is again a
tuple of runs, whose styles are the source unit's: the format writes each translated run
with the formatting of the source run whose style it carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Run:
    text: str
    style: int  # which of the unit's source formats this text wears (the format's index)


StyledText = tuple[Run, ...]  # a unit's text as runs, in reading order


@dataclass(frozen=True)
class Unit:
    runs: StyledText  # the block's text; adjacent runs differ in style
    kind: str = "paragraph"  # what a reader sees it as: paragraph, heading, cell, note, alt, ...
    verbatim: frozenset[int] = frozenset()  # styles whose text must come out unchanged (code)

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


@dataclass(frozen=True)
class FileOutput:
    data: bytes  # the translated file
    extension: str  # ".docx"; a PDF comes back as Word (docs/documents.md says why)
    media_type: str


class OpenedFile(Protocol):
    """A parsed file: its units, and how to write it back with their translations."""

    @property
    def units(self) -> Sequence[Unit]: ...

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        """The file with unit i replaced by translations[i]; everything else as it was."""
        ...


def merge_runs(runs: Sequence[Run]) -> StyledText:
    """Runs with empty text dropped and neighbours of one style joined."""
    merged: list[Run] = []
    for run in runs:
        if not run.text:
            continue
        if merged and merged[-1].style == run.style:
            merged[-1] = Run(merged[-1].text + run.text, run.style)
        else:
            merged.append(run)
    return tuple(merged)


def check_count(translations: Sequence[StyledText], units: Sequence[Unit]) -> None:
    """Translations must align with units one to one (a caller's bug otherwise)."""
    if len(translations) != len(units):
        raise ValueError(f"{len(translations)} translations for {len(units)} units")
