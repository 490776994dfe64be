"""OpenDocument text and presentations (.odt, .odp) with odfdo.

Translated: every paragraph and heading of the body (lists, tables, text boxes, frames,
footnotes and endnotes, slides' shapes), the speaker notes of a presentation, the headers
and footers of a text document's page styles, images' and shapes' title and description
(the alt text), and the document's title, subject and description. A presentation's master
pages are not translated (their placeholders' prompt texts are not shown in a slide show).

A paragraph is mixed content: text, formatting wrappers (`text:span`, `text:a`) around
text, and everything else (notes, frames, tabs, line breaks, fields, bookmarks), which is a
boundary kept as it is. The text between two boundaries is one unit whose styles are its
wrapper chains. Writing a paragraph back rebuilds its content from its pieces in order:
translated runs wrapped in copies of their wrappers (neighbours sharing a wrapper share one
copy), boundaries moved back in place. Only paragraphs with translated text are rebuilt;
changed parts are written with `containers.repack`, every other member byte for byte.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from odfdo import Document, Element
from odfdo.xmlpart import XmlPart

from service.errors import InvalidArgument
from service.formats.chains import common_prefix, hug
from service.formats.containers import checked_zip, read_member, repack
from service.formats.limits import FileLimits
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count, merge_runs
from service.text.plain import has_letter

_WRAPPERS = frozenset({"text:span", "text:a"})
_PARAGRAPHS = "//text:p | //text:h"
_PAGE_TEXT = (
    "//style:master-page/style:header//text:p | //style:master-page/style:footer//text:p"
    " | //style:master-page/style:header-left//text:p"
    " | //style:master-page/style:footer-left//text:p"
    " | //style:master-page/style:header-first//text:p"
    " | //style:master-page/style:footer-first//text:p"
)
_ALT = "//svg:title | //svg:desc"
_METADATA = ("title", "subject", "description")
_MEDIA = {
    "odt": ("application/vnd.oasis.opendocument.text", ".odt"),
    "odp": ("application/vnd.oasis.opendocument.presentation", ".odp"),
}

Key = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # a wrapper chain's tags and attributes


@dataclass
class _Paragraph:
    """One paragraph's pieces in order: ("text", str, chain) or ("atom", Element, chain)."""

    element: Element
    pieces: list[tuple[str, Any, tuple[Element, ...]]]
    units: list[tuple[int, int]] = field(default_factory=list)  # piece ranges of its units


@dataclass(frozen=True)
class _UnitPlace:
    paragraph: _Paragraph
    first: int  # pieces [first, last) of the paragraph
    last: int
    chains: tuple[tuple[Element, ...], ...]  # style -> the first source chain of that style


@dataclass(frozen=True)
class _Text:
    element: Element  # svg:title / svg:desc: plain text content


@dataclass(frozen=True)
class _Metadata:
    name: str


@dataclass(frozen=True)
class OpenDocumentFile:
    archive: zipfile.ZipFile
    document: Any  # odfdo.Document
    kind: str  # "odt" or "odp"
    units: tuple[Unit, ...]
    places: tuple[tuple[str, _UnitPlace | _Text | _Metadata], ...]  # (part name, place)

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        rebuilt: dict[int, tuple[_Paragraph, dict[int, Replacement]]] = {}
        changed: set[str] = set()
        for (part, place), runs in zip(self.places, translations, strict=True):
            changed.add(part)
            text = "".join(run.text for run in runs)
            if isinstance(place, _UnitPlace):
                entry = rebuilt.setdefault(id(place.paragraph), (place.paragraph, {}))
                entry[1][place.first] = (
                    place.last,
                    [(r.text, place.chains[r.style]) for r in runs],
                )
            elif isinstance(place, _Text):
                place.element.text = text
            else:
                setattr(self.document.meta, place.name, text)
        for paragraph, replacements in rebuilt.values():
            _rebuild(paragraph, replacements)
        parts = {name: self.document.get_part(name).serialize() for name in changed}
        media, extension = _MEDIA[self.kind]
        return FileOutput(repack(self.archive, parts), extension, media)


def open_opendocument(kind: str) -> Callable[[bytes, FileLimits], OpenDocumentFile]:
    """The opener for "odt" or "odp" files."""

    def opener(data: bytes, limits: FileLimits) -> OpenDocumentFile:
        return _open(data, limits, kind)

    return opener


def _open(data: bytes, limits: FileLimits, kind: str) -> OpenDocumentFile:
    what = "OpenDocument file"
    archive = checked_zip(data, what, limits)
    manifest = read_member(archive, "META-INF/manifest.xml", what)
    if b"encryption-data" in manifest:
        raise InvalidArgument(
            "the OpenDocument file is password-protected; save it without a password and "
            "send it again",
            field="file",
        )
    document = Document(io.BytesIO(data))
    units: list[Unit] = []
    places: list[tuple[str, _UnitPlace | _Text | _Metadata]] = []
    sources = [("content.xml", _PARAGRAPHS)]
    if kind == "odt":
        sources.append(("styles.xml", _PAGE_TEXT))
    for part_name, query in sources:
        root = _root(document, part_name)
        for element in _elements(root, query):
            paragraph = _Paragraph(element, list(_pieces(element, ())))
            for unit, place in _paragraph_units(paragraph, _kind(element, part_name)):
                units.append(unit)
                places.append((part_name, place))
        for element in _elements(root, _ALT):
            text = element.text_recursive or ""
            if has_letter(text) and not element.children:
                units.append(Unit((Run(text, 0),), kind="alt"))
                places.append((part_name, _Text(element)))
    if "meta.xml" in archive.namelist():
        for name in _METADATA:
            value = getattr(document.meta, name, None) or ""
            if isinstance(value, str) and has_letter(value):
                units.append(Unit((Run(value, 0),), kind="title"))
                places.append(("meta.xml", _Metadata(name)))
    return OpenDocumentFile(archive, document, kind, tuple(units), tuple(places))


def _root(document: Any, part_name: str) -> Element:
    part = document.get_part(part_name)
    if not isinstance(part, XmlPart):
        raise InvalidArgument(f"the OpenDocument file has no {part_name}", field="file")
    return part.root


def _elements(root: Element, query: str) -> list[Element]:
    return [e for e in root.xpath(query) if isinstance(e, Element)]


def _pieces(
    element: Element, chain: tuple[Element, ...]
) -> Iterator[tuple[str, Any, tuple[Element, ...]]]:
    if element.text:
        yield ("text", element.text, chain)
    for child in element.children:
        if child.tag in _WRAPPERS:
            yield from _pieces(child, (*chain, child))
        elif child.tag == "text:s":
            count = int(child.get_attribute("text:c") or 1)
            yield ("text", " " * count, chain)
        else:
            yield ("atom", child, chain)
        if child.tail:
            yield ("text", child.tail, chain)


def _key(chain: tuple[Element, ...]) -> Key:
    return tuple((e.tag, tuple(sorted(e.attributes.items()))) for e in chain)


def _paragraph_units(paragraph: _Paragraph, kind: str) -> list[tuple[Unit, _UnitPlace]]:
    found: list[tuple[Unit, _UnitPlace]] = []
    start = 0
    pieces = paragraph.pieces
    for index in range(len(pieces) + 1):
        if index < len(pieces) and pieces[index][0] == "text":
            continue
        if index > start:
            keys: list[Key] = []
            chains: list[tuple[Element, ...]] = []
            runs: list[Run] = []
            for _, text, chain in pieces[start:index]:
                key = _key(chain)
                if key not in keys:
                    keys.append(key)
                    chains.append(chain)
                runs.append(Run(text, keys.index(key)))
            unit = Unit(merge_runs(runs), kind=kind)
            if has_letter(unit.text):
                place = _UnitPlace(paragraph, start, index, tuple(chains))
                found.append((unit, place))
        start = index + 1
    return found


def _kind(element: Element, part: str) -> str:
    if part == "styles.xml":
        return "header"
    if element.tag == "text:h":
        return "heading"
    parent = element.parent
    while parent is not None:
        if parent.tag in ("text:note", "presentation:notes"):
            return "note"
        if parent.tag == "table:table-cell":
            return "cell"
        parent = parent.parent
    return "paragraph"


Flow = list[tuple[str, Any, tuple[Element, ...]]]  # ("text", str, chain) / ("atom", Element, chain)
Replacement = tuple[int, list[tuple[str, tuple[Element, ...]]]]  # (end piece, translated runs)


def _rebuild(paragraph: _Paragraph, replacements: dict[int, Replacement]) -> None:
    """The paragraph's content written again from its pieces, translated units replaced."""
    flow: Flow = []
    index = 0
    while index < len(paragraph.pieces):
        if index not in replacements:
            flow.append(paragraph.pieces[index])
            index += 1
            continue
        end, runs = replacements[index]
        prefixes = {_key(c[:n]): c[:n] for _, c in runs for n in range(len(c) + 1)}
        flow.extend(
            ("text", text, prefixes[key]) for text, key in hug([(t, _key(c)) for t, c in runs])
        )
        index = end
    element = paragraph.element
    for child in list(element.children):
        element.delete(child, keep_tail=False)
    element.text = ""
    keys: list[Any] = []  # the open wrappers' keys
    containers = [element]
    for kind, content, chain in flow:
        chain_keys = _key(chain)
        depth = common_prefix(tuple(keys), chain_keys)
        del keys[depth:]
        del containers[depth + 1 :]
        for wrapper, key in zip(chain[depth:], chain_keys[depth:], strict=True):
            copy = Element.from_tag(wrapper.tag)
            for name, value in wrapper.attributes.items():
                copy.set_attribute(name, value)
            containers[-1].append(copy)
            containers.append(copy)
            keys.append(key)
        if kind == "atom":
            content.tail = ""
        containers[-1].append(content)
