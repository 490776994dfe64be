"""Plain text (.txt): the whole file is one unit, split by the plain-text rules.

Line breaks, blank lines, list markers, indentation and the byte-order mark are kept exactly
(`service.text.plain`); only sentences change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.formats.limits import FileLimits
from service.formats.sniff import TextFile, read_text
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count


@dataclass(frozen=True)
class PlainTextFile:
    source: TextFile
    units: tuple[Unit, ...]

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        text = "".join(run.text for runs in translations for run in runs)
        return FileOutput(self.source.encode(text), ".txt", self.source.media_type("text/plain"))


def open_plain_text(data: bytes, limits: FileLimits) -> PlainTextFile:
    source = read_text(data, "text file")
    units = (Unit((Run(source.text, 0),), kind="text"),) if source.text.strip() else ()
    return PlainTextFile(source, units)
