"""HTML and XHTML (web pages, EPUB chapters) -> units with inline formatting, and back.

Parsed with the standard library's html.parser; the source is sliced at the offsets the
parser reports and only translated regions are rewritten, so every tag, attribute, comment
and entity outside them stays byte for byte (as `service/text/markup.py` does for the
`format: html` field). Unlike that splitter, a sentence here runs across inline elements:
`Click <b>here</b> now` is one unit with three runs, and the `<b>` follows the translated
word.

- Block elements (anything not in `_INLINE`) end a unit; so do `_ATOMS` (br, img, ...),
  comments and the content of `_SKIPPED` elements and of elements marked `translate="no"`
  or `class="notranslate"`, which are kept as they are.
- Inline code-like elements (code, kbd, samp, var) and inline elements marked not to be
  translated stay inside the sentence as verbatim runs (sent to the model as terms to keep).
- Empty inline elements (`<a id="p12"/>`, page markers in e-books) move to the start of
  their unit.
- An inline element that does not open and close inside one unit (malformed nesting) is
  kept as a boundary, so the rewritten region is always well nested.
- The attributes a reader meets (`alt`, `title`, `aria-label`) are units of their own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from service.errors import InvalidArgument
from service.formats.chains import render
from service.formats.units import Run, StyledText, Unit, merge_runs
from service.text.plain import has_letter

_INLINE = frozenset(
    {"a", "abbr", "b", "bdi", "bdo", "big", "cite", "data", "del", "dfn", "em", "font", "i"}
    | {"ins", "label", "mark", "q", "rb", "rp", "rt", "ruby", "s", "small", "span", "strike"}
    | {"strong", "sub", "sup", "time", "tt", "u"}
    | {"code", "kbd", "samp", "var"}
)
_VERBATIM = frozenset({"code", "kbd", "samp", "var"})
_SKIPPED = frozenset({"script", "style", "pre", "textarea", "template", "svg", "math"})
_ATOMS = frozenset(
    {"br", "img", "wbr", "input", "button", "select", "object", "iframe", "video", "audio"}
    | {"canvas", "embed", "hr", "area", "map", "noscript"}
)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
_ATTRIBUTES = ("alt", "title", "aria-label")
_ATTRIBUTE = re.compile(
    r"""(?P<name>[^\s/>"'=]+)(?:\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"'=<>`]+)))?"""
)
_OPENS_MARKUP = re.compile(r"<[A-Za-z/!?]")
_SPACES = re.compile(r"[ \t\r\n\f]+")  # HTML's whitespace: a run of it reads as one space
_PATH = re.compile(r"^\S*[/\\]\S*$|^[\w-]+\.[A-Za-z0-9]{2,4}$")  # a file name, not prose


@dataclass(frozen=True)
class _Event:
    start: int  # characters [start, end) of the source
    end: int
    kind: str  # "start", "end", "empty" (<x/>), "text", "other" (comments, doctype...)
    tag: str
    skipped: bool  # inside an element whose content is not translated
    verbatim: bool  # inside inline code or an inline element marked not to translate
    marked: bool  # this start tag itself says translate="no" / class="notranslate"
    block: str  # the innermost open element that is not inline ("" at the top)


class _Recorder(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.events: list[_Event] = []
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self._open: list[tuple[str, bool, bool]] = []  # (tag, skipped, verbatim)
        self.scripted = False  # a <script> element was seen

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def _state(self) -> tuple[bool, bool]:
        return (self._open[-1][1], self._open[-1][2]) if self._open else (False, False)

    def _add(self, kind: str, tag: str = "", marked: bool = False) -> None:
        skipped, verbatim = self._state()
        block = next((t for t, _, _ in reversed(self._open) if t not in _INLINE), "")
        self.events.append(_Event(self._offset(), -1, kind, tag, skipped, verbatim, marked, block))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        marked = (
            values.get("translate") == "no" or "notranslate" in (values.get("class") or "").split()
        )
        self._add("start", tag, marked)
        self.scripted = self.scripted or tag == "script"
        if tag in _VOID:
            return
        skipped, verbatim = self._state()
        inline_keep = tag in _INLINE and (tag in _VERBATIM or marked)
        self._open.append(
            (
                tag,
                skipped or tag in _SKIPPED or (marked and not inline_keep),
                verbatim or inline_keep,
            )
        )

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add("empty", tag)

    def handle_endtag(self, tag: str) -> None:
        self._add("end", tag)
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth][0] == tag:
                del self._open[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self.events and self.events[-1].kind == "text" and self.events[-1].end == -1:
            return  # html.parser reports a stray `<` as a text event of its own
        self._add("text")

    def handle_comment(self, data: str) -> None:
        self._add("other")

    def handle_decl(self, decl: str) -> None:
        self._add("other")

    def handle_pi(self, data: str) -> None:
        self._add("other")

    def unknown_decl(self, data: str) -> None:
        self._add("other")


Span = tuple[int, int]  # characters [start, end) of the source
SpanChain = tuple[tuple[Span, Span], ...]  # (start tag, end tag) pairs, outermost first


@dataclass(frozen=True)
class _Region:
    start: int  # characters [start, end) of the source rewritten for this unit
    end: int
    markers: tuple[Span, ...]  # empty inline elements, written first
    chains: tuple[SpanChain, ...]  # style -> its tags


@dataclass(frozen=True)
class _Attribute:
    start: int  # characters [start, end) of the value (quotes excluded)
    end: int
    quote: str  # '"' or "'"; "" when the value was unquoted (then quoted on writing)


@dataclass(frozen=True)
class HtmlUnits:
    """A page's units and where each goes back (a region of text or an attribute value)."""

    source: str
    units: tuple[Unit, ...]
    places: tuple[_Region | _Attribute, ...]  # one per unit
    scripted: bool  # the page has a <script> element

    def write(self, translations: Sequence[StyledText]) -> str:
        values: dict[int, tuple[int, str]] = {}  # attribute start -> (end, new value)
        for place, runs in zip(self.places, translations, strict=True):
            if isinstance(place, _Attribute):
                value = html.escape("".join(r.text for r in runs), quote=True)
                values[place.start] = (place.end, value if place.quote else f'"{value}"')

        def raw(span: Span) -> str:
            """The source's characters, with translated attribute values in them."""
            out, position = [], span[0]
            for start in sorted(v for v in values if span[0] <= v < span[1]):
                end, value = values[start]
                out += [self.source[position:start], value]
                position = end
            return "".join(out) + self.source[position : span[1]]

        edits: list[tuple[int, int, str]] = []
        for place, runs in zip(self.places, translations, strict=True):
            if isinstance(place, _Region):
                chains = [tuple((raw(a), raw(b)) for a, b in chain) for chain in place.chains]
                body = render(
                    [(r.text, chains[r.style]) for r in runs],
                    lambda text, _: html.escape(text, quote=False),
                )
                markers = "".join(raw(span) for span in place.markers)
                edits.append((place.start, place.end, markers + "".join(t for t, _ in body)))
        covered = [(start, end) for start, end, _ in edits]
        for start, (end, value) in values.items():
            if not any(a <= start < b for a, b in covered):
                edits.append((start, end, value))
        out: list[str] = []
        position = 0
        for start, end, text in sorted(edits):
            out.append(self.source[position:start])
            out.append(text)
            position = end
        out.append(self.source[position:])
        return "".join(out)


def html_units(source: str, what: str, within: frozenset[str] | None = None) -> HtmlUnits:
    """The units of an HTML or XHTML page; markup that never ends is refused. With
    `within`, only text directly inside those elements (e-book metadata: `dc:title`), and
    no attributes."""
    recorder = _Recorder(source)
    try:
        recorder.feed(source)
        recorder.close()
    except (AssertionError, ValueError) as error:
        raise InvalidArgument(f"the {what} is not parseable HTML: {error}", field="file") from error
    events = _with_ends(recorder.events, len(source))
    _refuse_unterminated(source, events, what)
    units: list[Unit] = []
    places: list[_Region | _Attribute] = []
    for event in events:
        if event.kind in ("start", "empty") and not event.skipped and within is None:
            for unit, place in _attribute_units(source, event):
                units.append(unit)
                places.append(place)
    for region in _regions(events):
        if within is not None and region[0].block not in within:
            continue
        built = _region_unit(source, region)
        if built is not None:
            units.append(built[0])
            places.append(built[1])
    order = sorted(range(len(units)), key=lambda i: places[i].start)
    return HtmlUnits(
        source,
        tuple(units[i] for i in order),
        tuple(places[i] for i in order),
        recorder.scripted,
    )


def _with_ends(events: list[_Event], length: int) -> list[_Event]:
    ends = [e.start for e in events[1:]] + [length]
    return [
        _Event(e.start, end, e.kind, e.tag, e.skipped, e.verbatim, e.marked, e.block)
        for e, end in zip(events, ends, strict=True)
    ]


def _refuse_unterminated(source: str, events: Sequence[_Event], what: str) -> None:
    for event in events:
        raw = source[event.start : event.end]
        if event.kind == "text":
            found = _OPENS_MARKUP.search(raw)
            if found is None:
                continue
            offset = event.start + found.start()
        elif raw.rstrip().endswith(">"):
            continue
        else:
            offset = event.start
        line = source.count("\n", 0, offset) + 1
        raise InvalidArgument(
            f"the {what} has markup that never ends at line {line} "
            f"({source[offset : offset + 20]!r})",
            field="file",
        )


def _is_inline(event: _Event) -> bool:
    return event.tag in _INLINE and event.kind in ("start", "end", "empty")


def _regions(events: Sequence[_Event]) -> list[list[_Event]]:
    """Runs of text and inline tags between block boundaries, well nested."""
    regions: list[list[_Event]] = []
    current: list[_Event] = []
    for event in events:
        flowing = not event.skipped and (event.kind == "text" or _is_inline(event))
        if flowing:
            current.append(event)
        else:
            if current:
                regions.append(current)
            current = []
    if current:
        regions.append(current)
    nested: list[list[_Event]] = []
    for region in regions:
        nested.extend(_well_nested(region))
    return nested


def _well_nested(region: list[_Event]) -> list[list[_Event]]:
    """The region cut at inline tags that do not open and close inside it (repeated until
    every piece is well nested)."""
    pieces = [region]
    changed = True
    while changed:
        changed = False
        result: list[list[_Event]] = []
        for piece in pieces:
            unmatched = _unmatched(piece)
            if not unmatched:
                result.append(piece)
                continue
            changed = True
            current: list[_Event] = []
            for index, event in enumerate(piece):
                if index in unmatched:
                    if current:
                        result.append(current)
                    current = []
                else:
                    current.append(event)
            if current:
                result.append(current)
        pieces = result
    return pieces


def _unmatched(events: Sequence[_Event]) -> set[int]:
    stack: list[int] = []
    unmatched: set[int] = set()
    for index, event in enumerate(events):
        if event.kind == "start":
            stack.append(index)
        elif event.kind == "end":
            if stack and events[stack[-1]].tag == event.tag:
                stack.pop()
            else:
                unmatched.add(index)
    unmatched.update(stack)
    return unmatched


def _region_unit(source: str, region: Sequence[_Event]) -> tuple[Unit, _Region] | None:
    keys: list[tuple[str, ...]] = []  # a style is its tags' markup (equal markup, one style)
    chains: list[SpanChain] = []
    verbatim: set[int] = set()
    runs: list[Run] = []
    markers: list[Span] = []
    open_tags: list[tuple[Span, int]] = []  # (start tag, index of its end in region)
    ends = _matching_ends(region)
    for index, event in enumerate(region):
        span = (event.start, event.end)
        if event.kind == "start":
            open_tags.append((span, ends[index]))
        elif event.kind == "end":
            open_tags.pop()
        elif event.kind == "empty":
            markers.append(span)
        else:
            chain = tuple((tag, (region[e].start, region[e].end)) for tag, e in open_tags)
            key = tuple(source[a:b] for pair in chain for a, b in pair)
            if key not in keys:
                keys.append(key)
                chains.append(chain)
            style = keys.index(key)
            if event.verbatim:
                verbatim.add(style)
            text = _SPACES.sub(" ", html.unescape(source[event.start : event.end]))
            runs.append(Run(text, style))
    for style in range(1, len(chains)):  # a note reference ("1", "*") inside a sentence
        if not has_letter("".join(r.text for r in runs if r.style == style)):
            verbatim.add(style)
    unit = Unit(merge_runs(runs), kind="paragraph", verbatim=frozenset(verbatim))
    readable = "".join(r.text for r in unit.runs if r.style not in verbatim)
    if not has_letter(readable):
        return None
    start, end = region[0].start, region[-1].end
    return unit, _Region(start, end, tuple(markers), tuple(chains))


def _matching_ends(region: Sequence[_Event]) -> dict[int, int]:
    ends: dict[int, int] = {}
    stack: list[int] = []
    for index, event in enumerate(region):
        if event.kind == "start":
            stack.append(index)
        elif event.kind == "end":
            ends[stack.pop()] = index
    return ends


def _attribute_units(source: str, event: _Event) -> list[tuple[Unit, _Attribute]]:
    """The reader-facing attribute values of one tag, as units of one style."""
    raw = source[event.start : event.end]
    name_end = re.match(r"<[^\s/>]*", raw)
    found: list[tuple[Unit, _Attribute]] = []
    for match in _ATTRIBUTE.finditer(raw, name_end.end() if name_end else 0):
        name = match.group("name").lower()
        if name not in _ATTRIBUTES:
            continue
        for group, quote in (("dq", '"'), ("sq", "'"), ("bare", "")):
            if match.group(group) is not None:
                value = html.unescape(match.group(group))
                if has_letter(value) and not _PATH.match(value.strip()):
                    start = event.start + match.start(group)
                    end = event.start + match.end(group)
                    found.append(
                        (Unit((Run(value, 0),), kind="alt"), _Attribute(start, end, quote))
                    )
                break
    return found
