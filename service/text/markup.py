"""HTML -> Document with the standard library's html.parser: only text nodes are translated.

Every tag, attribute, comment, doctype and character reference outside the translated
sentences is written back byte for byte: the parser reports where each construct starts,
and the source is sliced at those offsets rather than re-serialized (lxml and selectolax
re-serialize, which changes quoting, entities and whitespace). Within a text node, the
spaces, line breaks and list markers around sentences are kept raw; a sentence's character
references are decoded for the model and its translation is escaped (`&`, `<`, `>`).

Not translated: the contents of script, style, code, pre, kbd, samp, var, textarea and
template, and of any element marked `translate="no"` or `class="notranslate"` (the HTML
standard's and Google's conventions), nested elements included; attribute values.

Malformed HTML: markup the parser can delimit is kept as sent even when the nesting is wrong
(unclosed elements, stray end tags); only text changes, so a browser repairs the result
exactly as it repaired the source. A `<` that opens markup that never ends (`<div class="a`
with no `>`, `<!-- ...` with no `-->`) is refused with InvalidArgument naming the field,
line and column: translating it as text would turn the sender's markup into visible text.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from service.errors import InvalidArgument
from service.text.document import Document, DocumentBuilder
from service.text.limit import Fits
from service.text.plain import add_text

_SKIPPED = frozenset(
    {"script", "style", "code", "pre", "kbd", "samp", "var", "textarea", "template"}
)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
_OPENS_MARKUP = re.compile(r"<[A-Za-z/!?]")


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


class _Slicer(HTMLParser):
    """Records (offset, kind, tag) for every construct; the source is sliced afterwards."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[int, str, str, bool]] = []  # offset, kind, tag, skipping
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self._open: list[tuple[str, bool]] = []  # (tag, skipping) of open elements

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    @property
    def _skipping(self) -> bool:
        return bool(self._open) and self._open[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append((self._offset(), "tag", tag, self._skipping))
        if tag in _VOID:
            return
        values = dict(attrs)
        marked = (
            values.get("translate") == "no" or "notranslate" in (values.get("class") or "").split()
        )
        self._open.append((tag, self._skipping or tag in _SKIPPED or marked))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append((self._offset(), "tag", tag, self._skipping))

    def handle_endtag(self, tag: str) -> None:
        self.events.append((self._offset(), "tag", tag, self._skipping))
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth][0] == tag:  # close it and whatever was left open inside
                del self._open[depth:]
                break

    def handle_data(self, data: str) -> None:
        self.events.append((self._offset(), "text", "", self._skipping))

    def _markup(self) -> None:
        self.events.append((self._offset(), "markup", "", self._skipping))

    def handle_comment(self, data: str) -> None:
        self._markup()

    def handle_decl(self, decl: str) -> None:
        self._markup()

    def handle_pi(self, data: str) -> None:
        self._markup()

    def unknown_decl(self, data: str) -> None:
        self._markup()


def split_html(source: str, language: str, fits: Fits, *, field: str = "text") -> Document:
    """`source` as kept markup and the sentences of its text nodes."""
    slicer = _Slicer(source)
    try:
        slicer.feed(source)
        slicer.close()
    except (AssertionError, ValueError) as error:  # old parsers assert on bogus sections
        raise InvalidArgument(f"{field} is not parseable HTML: {error}", field=field) from error
    builder = DocumentBuilder()
    events = _merge_text(slicer.events)
    ends = [offset for offset, *_ in events[1:]] + [len(source)]
    position = 0
    for (offset, kind, _, skipping), end in zip(events, ends, strict=True):
        builder.keep(source[position:offset])  # nothing, unless the parser skipped bytes
        raw = source[offset:end]
        if kind != "text":
            if not raw.endswith(">"):
                _refuse(source, offset, field)
            builder.keep(raw)
        elif skipping:
            builder.keep(raw)
        else:
            unterminated = _OPENS_MARKUP.search(raw)
            if unterminated is not None:
                _refuse(source, offset + unterminated.start(), field)
            add_text(builder, raw, language, fits, decode=html.unescape)
        position = end
    return builder.build(write=_escape)


def _merge_text(events: list[tuple[int, str, str, bool]]) -> list[tuple[int, str, str, bool]]:
    """One event per text node: the parser reports a stray `<` as a text event of its own."""
    merged: list[tuple[int, str, str, bool]] = []
    for event in events:
        if merged and event[1] == "text" == merged[-1][1] and event[3] == merged[-1][3]:
            continue
        merged.append(event)
    return merged


def _refuse(source: str, offset: int, field: str) -> None:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    raise InvalidArgument(
        f"{field} has markup that never ends at line {line}, column {column} "
        f"({source[offset : offset + 20]!r}); close the tag or comment, or send format 'text'",
        field=field,
    )
