"""Markdown (.md) with markdown-it-py (CommonMark, plus GFM tables and strikethrough).

Translated: the text of paragraphs, headings, list items, block quotes and table cells, and
images' alt text. Left byte for byte as they are: front matter, code blocks and fences,
inline code (sent to the model as a term to keep), HTML blocks and inline HTML, link and
image targets and titles, autolinks, reference definitions, and every line's container
prefix (`> `, `- `, indentation). Emphasis, strong, strikethrough and links are inline
formatting runs: their markup follows the translated words. A paragraph keeps its number of
lines (re-broken at balanced spaces), so hard-wrapped files stay hard-wrapped.

markdown-it-py reports each block's source lines and each inline element's text; the raw
markup between the texts is read back from the source with a small cursor (`_Reader`), so
nothing is re-rendered that was not translated. An inline whose markup the reader cannot
follow (rare constructs) is left untranslated rather than risk breaking it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from service.formats.chains import Chain, render
from service.formats.limits import FileLimits
from service.formats.sniff import TextFile, read_text
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count, merge_runs
from service.formats.wrap import wrap_segments
from service.text.plain import has_letter

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"]).use(front_matter_plugin)
_WRAPPERS = {"em", "strong", "s"}
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ESCAPED = re.compile(r"([\\`*_\[\]<|])")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_VOID_HTML = frozenset({"br", "img", "hr", "wbr", "input", "source", "embed"})


class _Unreadable(Exception):
    """The raw markup did not match what the parser reported: leave the inline as it is."""


class _Reader:
    """A cursor over an inline's raw source that consumes what each token stands for."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.position = 0

    def take(self, end: int) -> str:
        if end < self.position or end > len(self.raw):
            raise _Unreadable
        piece, self.position = self.raw[self.position : end], end
        return piece

    def expect(self, markup: str) -> str:
        if not self.raw.startswith(markup, self.position):
            raise _Unreadable
        return self.take(self.position + len(markup))

    def text(self, text: str) -> str:
        """The raw spelling of `text`: backslash escapes and entity references allowed."""
        i, j, raw = self.position, 0, self.raw
        while j < len(text):
            entity = _ENTITY.match(raw, i)
            decoded = html.unescape(entity.group()) if entity else ""
            if entity and decoded != entity.group() and text.startswith(decoded, j):
                i, j = entity.end(), j + len(decoded)
            elif i < len(raw) and raw[i] == text[j]:
                i, j = i + 1, j + 1
            elif raw.startswith("\\", i) and i + 1 < len(raw) and raw[i + 1] == text[j]:
                i, j = i + 2, j + 1
            else:
                raise _Unreadable
        return self.take(i)

    def line_break(self) -> str:
        match = re.compile(r"[ \t]*\\?\n").match(self.raw, self.position)
        if match is None:
            raise _Unreadable
        return self.take(match.end())

    def link_tail(self) -> str:
        """`]` and what follows a link's text: `(target "title")`, `[label]` or nothing."""
        self.expect("]")
        start = self.position
        if self.raw.startswith("(", start):
            return "]" + self.take(_closing(self.raw, start, "(", ")"))
        if self.raw.startswith("[", start):
            end = self.raw.find("]", start)
            if end < 0:
                raise _Unreadable
            return "]" + self.take(end + 1)
        return "]"

    def code(self, fence: str, content: str) -> tuple[str, str]:
        """Inline code's opening and closing raw (fence plus any padding space)."""
        opening = self.expect(fence)
        end = self.raw.find(fence, self.position)
        if end < 0:
            raise _Unreadable
        inner = self.raw[self.position : end]
        lead = inner.find(content.strip()) if content.strip() else 0
        if lead < 0:
            raise _Unreadable
        self.take(self.position + lead)
        self.take(self.position + len(content.strip()))
        closing = self.take(end + len(fence))
        return opening + inner[:lead], closing


def _closing(raw: str, start: int, opening: str, closing: str) -> int:
    """The index after the `closing` that balances raw[start] (quotes and escapes skipped)."""
    depth, index, quote = 0, start, ""
    while index < len(raw):
        char = raw[index]
        if char == "\\":
            index += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'" and depth == 1:
            quote = char
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise _Unreadable


@dataclass
class _Wrapper:
    opening: str
    closing: str = ""


@dataclass
class _Builder:
    """Collects one inline's parts: kept raw text and units (runs of wrapper stacks)."""

    parts: list[str | int] = field(default_factory=list)  # raw, or an index into `units`
    units: list[list[tuple[str, tuple[int, ...], bool]]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # per unit: how many source lines
    current: list[tuple[str, tuple[int, ...], bool]] = field(default_factory=list)
    current_lines: int = 1

    def flush(self) -> None:
        if self.current:
            self.parts.append(len(self.units))
            self.units.append(self.current)
            self.lines.append(self.current_lines)
        self.current, self.current_lines = [], 1


@dataclass(frozen=True)
class _Inline:
    lines: tuple[tuple[int, int, int], ...]  # (source line, start, end) of each content line
    parts: tuple[str | int, ...]  # kept raw, or an index into the file's units
    unit_lines: dict[int, int]  # unit index -> its number of lines


@dataclass(frozen=True)
class MarkdownFile:
    source: TextFile
    units: tuple[Unit, ...]
    chains: tuple[tuple[Chain, ...], ...]  # per unit: style -> markup chain
    verbatim: tuple[frozenset[int], ...]  # per unit: styles written unescaped (inline code)
    inlines: tuple[_Inline, ...]

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        lines = _LINE.findall(self.source.text)
        edits: dict[int, list[tuple[int, int, str]]] = {}
        for inline in self.inlines:
            content = "".join(
                part if isinstance(part, str) else self._unit(part, translations[part], inline)
                for part in inline.parts
            )
            new_lines = content.split("\n")
            if len(new_lines) != len(inline.lines):  # cannot happen: each unit keeps its lines
                raise ValueError("a Markdown paragraph changed its number of lines")
            for (line, start, end), text in zip(inline.lines, new_lines, strict=True):
                edits.setdefault(line, []).append((start, end, text))
        for line, changes in edits.items():
            text = lines[line]
            for start, end, new in sorted(changes, reverse=True):
                text = text[:start] + new + text[end:]
            lines[line] = text
        return FileOutput(
            self.source.encode("".join(lines)), ".md", self.source.media_type("text/markdown")
        )

    def _unit(self, index: int, runs: StyledText, inline: _Inline) -> str:
        chains, verbatim = self.chains[index], self.verbatim[index]

        def escape(text: str, chain: Chain) -> str:
            return text if chain in {chains[s] for s in verbatim} else _ESCAPED.sub(r"\\\1", text)

        segments = render([(run.text, chains[run.style]) for run in runs], escape)
        return wrap_segments(segments, inline.unit_lines[index], "\n")


def open_markdown(data: bytes, limits: FileLimits) -> MarkdownFile:
    source = read_text(data, "Markdown file")
    lines = _LINE.findall(source.text)
    units: list[Unit] = []
    chains: list[tuple[Chain, ...]] = []
    verbatim: list[frozenset[int]] = []
    inlines: list[_Inline] = []
    cursors: dict[int, int] = {}
    for token in _PARSER.parse(source.text):
        if token.type != "inline" or token.map is None or not token.children:
            continue
        found = _locate(token, lines, cursors)
        if found is None:
            continue
        raw, located = found
        try:
            built = _read_inline(raw, token.children)
        except _Unreadable:
            continue
        parts: list[str | int] = []
        unit_lines: dict[int, int] = {}
        for part in built.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            unit, unit_chains, unit_verbatim, raw = _unit_of(built, part)
            if not has_letter(unit.text):
                parts.append(raw)
                continue
            unit_lines[len(units)] = built.lines[part]
            parts.append(len(units))
            units.append(unit)
            chains.append(unit_chains)
            verbatim.append(unit_verbatim)
        inlines.append(_Inline(located, tuple(parts), unit_lines))
    return MarkdownFile(source, tuple(units), tuple(chains), tuple(verbatim), tuple(inlines))


def _locate(
    token: Token, lines: list[str], cursors: dict[int, int]
) -> tuple[str, tuple[tuple[int, int, int], ...]] | None:
    """The inline's raw content and where each of its lines sits in the source lines (a
    table cell's content comes with its `\\|` already unescaped)."""
    assert token.map is not None
    for raw in dict.fromkeys((token.content, token.content.replace("|", "\\|"))):
        located = []
        for offset, content_line in enumerate(raw.split("\n")):
            line = token.map[0] + offset
            start = (
                lines[line].find(content_line, cursors.get(line, 0)) if line < len(lines) else -1
            )
            if start < 0:
                break
            located.append((line, start, start + len(content_line)))
        else:
            for line, _, end in located:
                cursors[line] = end
            return raw, tuple(located)
    return None


@dataclass(frozen=True)
class _Built:
    parts: tuple[str | int, ...]
    units: tuple[tuple[tuple[str, tuple[int, ...], bool], ...], ...]  # (text, stack, code)
    lines: tuple[int, ...]
    wrappers: tuple[_Wrapper, ...]
    raws: tuple[str, ...]  # per unit: its raw source (kept when it has nothing to translate)


def _read_inline(raw: str, children: Sequence[Token]) -> _Built:
    reader = _Reader(raw)
    builder = _Builder()
    wrappers: list[_Wrapper] = []
    stack: list[int] = []
    unit_start = 0
    raws: list[str] = []

    def close_unit(end: int) -> None:
        """End the running unit at raw[end] (its raw kept for when it has no letter)."""
        nonlocal unit_start
        if builder.current:
            raws.append(raw[unit_start:end])
        builder.flush()

    def keep(start: int, piece: str) -> None:
        nonlocal unit_start
        if stack:  # markup that cannot be cut inside emphasis or a link
            raise _Unreadable
        close_unit(start)
        builder.parts.append(piece)
        unit_start = reader.position

    queue = list(children)
    html_depth = 0
    while queue:
        child = queue.pop(0)
        kind = child.type
        name = kind.rsplit("_", 1)[0]
        if kind == "text" and html_depth:  # inside inline HTML (<kbd>...</kbd>): kept
            start = reader.position
            keep(start, reader.text(child.content))
        elif kind == "text":
            reader.text(child.content)
            builder.current.append((child.content, tuple(stack), False))
        elif name in _WRAPPERS and kind.endswith("_open"):
            wrappers.append(_Wrapper(reader.expect(child.markup)))
            stack.append(len(wrappers) - 1)
        elif name in _WRAPPERS and kind.endswith("_close"):
            if not stack:
                raise _Unreadable
            wrappers[stack.pop()].closing = reader.expect(child.markup)
        elif kind == "link_open" and child.markup != "autolink":
            wrappers.append(_Wrapper(reader.expect("[")))
            stack.append(len(wrappers) - 1)
        elif kind == "link_close" and child.markup != "autolink":
            if not stack:
                raise _Unreadable
            wrappers[stack.pop()].closing = reader.link_tail()
        elif kind == "code_inline":
            opening, closing = reader.code(child.markup, child.content)
            wrappers.append(_Wrapper(opening, closing))
            builder.current.append((child.content.strip(), (*stack, len(wrappers) - 1), True))
        elif kind == "softbreak":
            reader.line_break()
            builder.current.append((" ", tuple(stack), False))
            builder.current_lines += 1
        elif kind == "image" and not stack:
            start = reader.position
            piece = _raw_of(reader, child)
            alt = child.content
            if piece.startswith(f"![{alt}]") and has_letter(alt):  # alt text: a unit
                keep(start, "![")
                builder.current.append((alt, (), False))
                raws.append(alt)
                builder.flush()
                builder.parts.append(piece[2 + len(alt) :])
            else:
                keep(start, piece)
        else:  # hard breaks, autolinks, inline HTML: kept as they are
            if kind == "link_open":  # an autolink: its text and end are in its raw
                while queue and queue.pop(0).type != "link_close":
                    pass
            start = reader.position
            keep(start, _raw_of(reader, child))
            if kind == "html_inline":
                html_depth = max(0, html_depth + _html_depth_change(child.content))
    if reader.position != len(raw) or stack:
        raise _Unreadable
    close_unit(len(raw))
    return _Built(
        tuple(builder.parts),
        tuple(tuple(unit) for unit in builder.units),
        tuple(builder.lines),
        tuple(wrappers),
        tuple(raws),
    )


def _html_depth_change(tag: str) -> int:
    """+1 for an opening inline HTML tag, -1 for a closing one, 0 for others."""
    if tag.startswith("</"):
        return -1
    match = re.match(r"<([A-Za-z][\w-]*)", tag)
    if match is None or tag.endswith("/>") or match.group(1).lower() in _VOID_HTML:
        return 0
    return 1


def _raw_of(reader: _Reader, child: Token) -> str:
    """The raw source of an element kept as it is."""
    start = reader.position
    if child.type == "hardbreak":
        reader.line_break()
    elif child.type == "html_inline":
        reader.expect(child.content)
    elif child.type == "link_open":  # an autolink: <http://...>
        reader.expect("<")
        reader.take(reader.raw.index(">", reader.position) + 1)
    elif child.type == "image":
        reader.expect("![")
        depth = 1
        while depth:
            if reader.position >= len(reader.raw):
                raise _Unreadable
            char = reader.raw[reader.position]
            if char == "\\":
                reader.take(reader.position + 2)
                continue
            depth += {"[": 1, "]": -1}.get(char, 0)
            if depth:
                reader.take(reader.position + 1)
        reader.link_tail()
    else:
        raise _Unreadable
    return reader.raw[start : reader.position]


def _unit_of(built: _Built, index: int) -> tuple[Unit, tuple[Chain, ...], frozenset[int], str]:
    """One unit's runs with its styles turned into markup chains (equal chains merged)."""
    chains: list[Chain] = []
    verbatim: set[int] = set()
    runs: list[Run] = []
    for text, stack, code in built.units[index]:
        chain = tuple((built.wrappers[w].opening, built.wrappers[w].closing) for w in stack)
        if chain not in chains:
            chains.append(chain)
        style = chains.index(chain)
        if code:
            verbatim.add(style)
        runs.append(Run(text, style))
    raw = built.raws[index]
    unit = Unit(merge_runs(runs), kind="paragraph", verbatim=frozenset(verbatim))
    return unit, tuple(chains), frozenset(verbatim), raw
