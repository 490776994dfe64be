"""Paragraphs of Office Open XML (Word's `w:p`, DrawingML's `a:p` in PowerPoint) as units.

A paragraph's children are read in order: text runs (a run holding only properties and
text), wrappers of text runs (Word's `w:hyperlink`), zero-width markers (bookmarks,
proofing marks) and everything else, which is a boundary kept in place: tabs, breaks,
drawings, footnote references, fields (from a field's begin to its end), tracked changes,
content controls. The text runs between two boundaries make one unit; a run's style is its
properties (rsid attributes aside, which only record editing sessions) and its wrapper.

Writing a unit back replaces its runs with one run per translated run: a copy of the first
source run of that style, its text replaced, wrapped again in a copy of its wrapper; the
unit's markers move in front of it. Nothing outside the unit's runs is touched.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from service.formats.units import Run, StyledText, Unit, merge_runs
from service.text.plain import has_letter

_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_RSID = re.compile(r'\s[\w:]*rsid\w*="[^"]*"')


@dataclass(frozen=True)
class Dialect:
    """The tag names (Clark notation) of one Office XML vocabulary."""

    run: str  # w:r, a:r
    text: str  # w:t, a:t
    properties: str  # w:rPr, a:rPr
    wrappers: frozenset[str]  # elements wrapping text runs: w:hyperlink
    markers: frozenset[str]  # zero-width elements that may move: bookmarks, proofing marks
    ignored: frozenset[str]  # paragraph children that stay where they are: w:pPr, a:pPr
    field_char: str = ""  # w:fldChar: runs from a field's begin to its end are boundaries
    field_type: str = ""  # its attribute: w:fldCharType
    preserve_space: bool = False  # mark text with outer spaces xml:space="preserve" (Word)
    run_ignored: frozenset[str] = frozenset()  # run children dropped on rewriting (caches)


@dataclass
class _Segment:
    runs: list[tuple[etree._Element, etree._Element | None]] = field(default_factory=list)
    markers: list[etree._Element] = field(default_factory=list)
    elements: list[etree._Element] = field(default_factory=list)  # the paragraph children


@dataclass(frozen=True)
class OfficeUnit:
    """Where a unit's runs live, and the templates of its styles."""

    paragraph: etree._Element
    elements: tuple[etree._Element, ...]  # the paragraph children the unit replaces
    markers: tuple[etree._Element, ...]
    templates: tuple[tuple[etree._Element, etree._Element | None], ...]  # style -> run, wrapper


def paragraph_units(
    paragraph: etree._Element, dialect: Dialect, kind: str
) -> list[tuple[Unit, OfficeUnit]]:
    """The units of one paragraph (none when it has no letter)."""
    _split_mixed_runs(paragraph, dialect)
    found: list[tuple[Unit, OfficeUnit]] = []
    for segment in _segments(paragraph, dialect):
        keys: list[tuple[str, object]] = []
        templates: list[tuple[etree._Element, etree._Element | None]] = []
        runs: list[Run] = []
        for run, wrapper in segment.runs:
            key = (_style_key(run, dialect), _wrapper_key(wrapper))
            if key not in keys:
                keys.append(key)
                templates.append((run, wrapper))
            runs.append(Run(_run_text(run, dialect), keys.index(key)))
        unit = Unit(merge_runs(runs), kind=kind)
        if has_letter(unit.text):
            place = OfficeUnit(
                paragraph, tuple(segment.elements), tuple(segment.markers), tuple(templates)
            )
            found.append((unit, place))
    return found


def write_unit(place: OfficeUnit, runs: StyledText, dialect: Dialect) -> None:
    """Replace the unit's source runs with `runs` (in its styles)."""
    new: list[etree._Element] = list(place.markers)
    open_wrapper: tuple[etree._Element, etree._Element] | None = None  # (source, copy)
    for run in runs:
        template, wrapper = place.templates[run.style]
        element = _text_run(template, run.text, dialect)
        if wrapper is None:
            open_wrapper = None
            new.append(element)
            continue
        if open_wrapper is None or open_wrapper[0] is not wrapper:
            shell = etree.Element(wrapper.tag, attrib=dict(wrapper.attrib), nsmap=wrapper.nsmap)
            open_wrapper = (wrapper, shell)
            new.append(shell)
        open_wrapper[1].append(element)
    first = place.elements[0]
    index = place.paragraph.index(first)
    for element in place.elements:
        if element.getparent() is place.paragraph:
            place.paragraph.remove(element)
    for offset, element in enumerate(new):
        place.paragraph.insert(index + offset, element)


def _text_run(template: etree._Element, text: str, dialect: Dialect) -> etree._Element:
    run = etree.Element(template.tag, attrib=dict(template.attrib), nsmap=template.nsmap)
    properties = template.find(dialect.properties)
    if properties is not None:
        run.append(copy.deepcopy(properties))
    node = etree.SubElement(run, dialect.text)
    node.text = text
    if dialect.preserve_space and text != text.strip():
        node.set(_XML_SPACE, "preserve")
    return run


def _segments(paragraph: etree._Element, dialect: Dialect) -> list[_Segment]:
    segments: list[_Segment] = [_Segment()]
    field_depth = 0
    for child in paragraph:
        if not isinstance(child.tag, str) or child.tag in dialect.ignored:
            continue
        if field_depth or _field_change(child, dialect):
            field_depth = max(0, field_depth + _field_change(child, dialect))
            segments.append(_Segment())
            continue
        if child.tag in dialect.markers:
            segments[-1].markers.append(child)
            segments[-1].elements.append(child)
        elif child.tag == dialect.run and _is_text_run(child, dialect):
            segments[-1].runs.append((child, None))
            segments[-1].elements.append(child)
        elif child.tag in dialect.wrappers and _wraps_text_only(child, dialect):
            for inner in child:
                if inner.tag == dialect.run:
                    segments[-1].runs.append((inner, child))
            segments[-1].elements.append(child)
        else:
            segments.append(_Segment())
    return [s for s in segments if s.runs]


def _field_change(element: etree._Element, dialect: Dialect) -> int:
    """+1 when a run begins a field, -1 when it ends one, 0 otherwise."""
    if not dialect.field_char or element.tag != dialect.run:
        return 0
    change = 0
    for char in element.iter(dialect.field_char):
        kind = char.get(dialect.field_type)
        change += {"begin": 1, "end": -1}.get(kind or "", 0)
    return change


def _is_text_run(run: etree._Element, dialect: Dialect) -> bool:
    return (
        all(
            child.tag in (dialect.properties, dialect.text)
            for child in run
            if isinstance(child.tag, str)
        )
        and run.find(dialect.text) is not None
    )


def _wraps_text_only(wrapper: etree._Element, dialect: Dialect) -> bool:
    inner = [child for child in wrapper if isinstance(child.tag, str)]
    return bool(inner) and all(
        (child.tag == dialect.run and _is_text_run(child, dialect)) for child in inner
    )


def _run_text(run: etree._Element, dialect: Dialect) -> str:
    return "".join(node.text or "" for node in run.iter(dialect.text))


def _style_key(run: etree._Element, dialect: Dialect) -> str:
    properties = run.find(dialect.properties)
    if properties is None:
        return ""
    return _RSID.sub("", etree.tostring(properties, encoding="unicode"))


def _wrapper_key(wrapper: etree._Element | None) -> object:
    return None if wrapper is None else tuple(sorted(wrapper.attrib.items()))


def _split_mixed_runs(paragraph: etree._Element, dialect: Dialect) -> None:
    """A run holding text and a tab or break becomes one run per piece, so the text parts
    can join their neighbours' units (same properties, same place)."""
    for run in [c for c in paragraph if c.tag == dialect.run]:
        skip = {dialect.properties} | dialect.run_ignored
        content = [c for c in run if isinstance(c.tag, str) and c.tag not in skip]
        if len(content) < 2 or not any(c.tag == dialect.text for c in content):
            continue
        if dialect.field_char and any(c.tag == dialect.field_char for c in content):
            continue
        properties = run.find(dialect.properties)
        index = paragraph.index(run)
        for offset, piece in enumerate(content):
            single = etree.Element(run.tag, attrib=dict(run.attrib), nsmap=run.nsmap)
            if properties is not None:
                single.append(copy.deepcopy(properties))
            single.append(piece)
            paragraph.insert(index + 1 + offset, single)
        paragraph.remove(run)


def paragraphs(root: etree._Element, tag: str) -> Sequence[etree._Element]:
    """Every paragraph under `root`, nested ones (text boxes, table cells) included."""
    return list(root.iter(tag))
