"""SubRip subtitles (.srt) with the `srt` library: one cue, one unit; numbering and timings kept.

`srt.parse` validates the file (a garbled cue is refused with where it is); the spans of each
cue's text come from the same library's `SRT_REGEX`, so everything outside the cue texts
(numbers, timings, position suffixes, blank lines, CRLF or LF, the byte-order mark) is
written back byte for byte. A cue's lines are one sentence flow (subtitle lines are a
display wrap), except lines that open with a dialogue dash, which stay lines of their own;
the translation is broken again into as many lines as the source had, at balanced spaces.
Inline tags (`<i>`, `<b>`, `<u>`, `<font ...>`) are formatting runs; `{\\an8}`-style
position tags stay at the head of the cue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import srt

from service.errors import InvalidArgument
from service.formats.chains import Chain, render
from service.formats.limits import FileLimits
from service.formats.sniff import TextFile, read_text
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count, merge_runs
from service.formats.wrap import wrap_segments
from service.text.plain import has_letter

_TAG = re.compile(r"<(/?)(i|b|u|font)\b[^>]*>|\{\\[^}]*\}", re.IGNORECASE)
_DIALOGUE = re.compile(r"\s*[-–—]\s")
_CONTENT = 5  # SRT_REGEX's group of the cue text


@dataclass(frozen=True)
class _Cue:
    start: int  # characters [start, end) of the cue text in the file
    end: int
    newline: str  # "\r\n" or "\n", as the cue's lines end
    blocks: tuple[int, ...]  # lines per block (a dialogue line starts a block)
    head: str  # position tags, written first
    chains: tuple[Chain, ...]  # style -> (open tag, close tag) chain


@dataclass(frozen=True)
class SubtitleFile:
    source: TextFile
    units: tuple[Unit, ...]
    cues: tuple[_Cue, ...]  # one per unit

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        text = self.source.text
        out: list[str] = []
        position = 0
        for cue, runs in zip(self.cues, translations, strict=True):
            out.append(text[position : cue.start])
            out.append(_render(cue, runs))
            position = cue.end
        out.append(text[position:])
        return FileOutput(
            self.source.encode("".join(out)), ".srt", self.source.media_type("application/x-subrip")
        )


def open_subtitles(data: bytes, limits: FileLimits) -> SubtitleFile:
    source = read_text(data, "subtitle file")
    try:
        cues = list(srt.parse(source.text))
    except (srt.SRTParseError, srt.TimestampParseError, ValueError) as error:
        raise InvalidArgument(
            f"the file is not valid SubRip (.srt): {error}", field="file"
        ) from error
    matches = list(srt.SRT_REGEX.finditer(source.text))
    if len(matches) != len(cues):
        raise InvalidArgument("the file is not valid SubRip (.srt)", field="file")
    units: list[Unit] = []
    kept: list[_Cue] = []
    for match in matches:
        start, end = match.span(_CONTENT)
        content = source.text[start:end]
        if not has_letter(_TAG.sub("", content)):
            continue
        unit, cue = _parse_cue(content, start, end)
        units.append(unit)
        kept.append(cue)
    return SubtitleFile(source, tuple(units), tuple(kept))


def _parse_cue(content: str, start: int, end: int) -> tuple[Unit, _Cue]:
    newline = "\r\n" if "\r\n" in content else "\n"
    lines = content.split(newline)
    blocks: list[int] = []
    flow: list[str] = []
    for index, line in enumerate(lines):
        if index == 0 or _DIALOGUE.match(_TAG.sub("", line)):
            blocks.append(1)
            flow.append(("\n" if index else "") + line)
        else:
            blocks[-1] += 1
            flow.append(" " + line)
    runs, head, chains = _runs("".join(flow))
    cue = _Cue(start, end, newline, tuple(blocks), head, chains)
    return Unit(runs, kind="cue"), cue


def _runs(text: str) -> tuple[StyledText, str, tuple[Chain, ...]]:
    """The cue's text as runs; a style is the chain of tags open around a run."""
    chains: list[Chain] = [()]
    open_tags: list[tuple[str, str, str]] = []  # (name, open tag, close tag)
    runs: list[Run] = []
    head: list[str] = []
    position = 0

    def style() -> int:
        chain = tuple((tag, close) for _, tag, close in open_tags)
        if chain not in chains:
            chains.append(chain)
        return chains.index(chain)

    for match in _TAG.finditer(text):
        runs.append(Run(text[position : match.start()], style()))
        position = match.end()
        closing, name = match.group(1), (match.group(2) or "").lower()
        if not name:
            head.append(match.group())
        elif not closing:
            open_tags.append((name, match.group(), f"</{match.group(2)}>"))
        else:
            for depth in range(len(open_tags) - 1, -1, -1):
                if open_tags[depth][0] == name:
                    open_tags[depth] = (name, open_tags[depth][1], match.group())
                    del open_tags[depth:]
                    break
    runs.append(Run(text[position:], style()))
    return merge_runs(runs), "".join(head), tuple(chains)


def _render(cue: _Cue, runs: StyledText) -> str:
    """The translated cue with its tags, broken into its blocks' line counts."""
    body = render([(run.text, cue.chains[run.style]) for run in runs], lambda text, _: text)
    segments: list[tuple[str, bool]] = [(cue.head, False), *body]
    blocks = _split_blocks(segments)
    if len(blocks) != len(cue.blocks):  # the model merged or split dialogue lines
        blocks, counts = [segments], [sum(cue.blocks)]
    else:
        counts = list(cue.blocks)
    return cue.newline.join(
        wrap_segments(block, lines, cue.newline).strip(" ")
        for block, lines in zip(blocks, counts, strict=True)
    )


def _split_blocks(segments: list[tuple[str, bool]]) -> list[list[tuple[str, bool]]]:
    """Segments cut at the kept "\\n" that separate dialogue lines."""
    blocks: list[list[tuple[str, bool]]] = [[]]
    for text, shown in segments:
        if not shown or "\n" not in text:
            blocks[-1].append((text, shown))
            continue
        parts = text.split("\n")
        blocks[-1].append((parts[0], True))
        for part in parts[1:]:
            blocks.append([(part, True)])
    return blocks
