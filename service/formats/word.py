"""Word documents (.docx) with python-docx.

Translated: every paragraph of the body (tables, lists, text boxes and content inside
drawings included), of headers and footers, of footnotes and endnotes; images' alt text
(`descr`, `title`); the document's title, subject and description. Inline formatting
follows the words (`office_runs`). Not translated: comments, tracked insertions and
deletions, field codes and results (page numbers, tables of contents: Word updates them),
text inside content controls.

python-docx opens the package and gives each part's XML; the footnote and endnote parts,
which it does not model, are parsed with its own parser. The changed parts are written back
with `containers.repack`, every other member byte for byte.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import docx
from docx.opc.constants import CONTENT_TYPE as CT
from docx.oxml import parse_xml
from docx.oxml.ns import qn
from lxml import etree

from service.formats.containers import checked_zip, repack
from service.formats.limits import FileLimits
from service.formats.office_runs import Dialect, OfficeUnit, paragraph_units, write_unit
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count
from service.text.plain import has_letter

WORD = Dialect(
    run=qn("w:r"),
    text=qn("w:t"),
    properties=qn("w:rPr"),
    wrappers=frozenset({qn("w:hyperlink")}),
    markers=frozenset(
        qn(f"w:{name}")
        for name in (
            "bookmarkStart",
            "bookmarkEnd",
            "proofErr",
            "commentRangeStart",
            "commentRangeEnd",
            "permStart",
            "permEnd",
        )
    ),
    ignored=frozenset({qn("w:pPr")}),
    field_char=qn("w:fldChar"),
    field_type=qn("w:fldCharType"),
    preserve_space=True,
    run_ignored=frozenset({qn("w:lastRenderedPageBreak")}),
)
_PARTS = {
    CT.WML_DOCUMENT_MAIN: "paragraph",
    CT.WML_HEADER: "header",
    CT.WML_FOOTER: "footer",
    CT.WML_FOOTNOTES: "note",
    CT.WML_ENDNOTES: "note",
}
_ALT_HOLDERS = (qn("wp:docPr"), qn("pic:cNvPr"))
_ALT_ATTRIBUTES = ("descr", "title")
_HEADING = re.compile(r"^(heading|title|subtitle)", re.IGNORECASE)
_METADATA = ("title", "subject", "comments")


@dataclass(frozen=True)
class _Part:
    member: str  # its name in the ZIP
    root: etree._Element
    serialize: Callable[[], bytes]


@dataclass(frozen=True)
class _Attribute:
    element: etree._Element
    name: str


@dataclass(frozen=True)
class _Metadata:
    name: str  # a core property: title, subject, comments


@dataclass(frozen=True)
class WordDocument:
    archive: zipfile.ZipFile
    document: Any  # docx.document.Document
    units: tuple[Unit, ...]
    places: tuple[tuple[_Part, OfficeUnit | _Attribute | _Metadata], ...]

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        changed: dict[str, _Part] = {}
        for (part, place), runs in zip(self.places, translations, strict=True):
            text = "".join(run.text for run in runs)
            if isinstance(place, OfficeUnit):
                write_unit(place, runs, WORD)
            elif isinstance(place, _Attribute):
                place.element.set(place.name, text)
            else:
                setattr(self.document.core_properties, place.name, text)
            changed[part.member] = part
        data = repack(self.archive, {name: part.serialize() for name, part in changed.items()})
        return FileOutput(
            data,
            ".docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )


def open_word(data: bytes, limits: FileLimits) -> WordDocument:
    archive = checked_zip(data, "Word document", limits)
    document = docx.Document(io.BytesIO(data))
    units: list[Unit] = []
    places: list[tuple[_Part, OfficeUnit | _Attribute | _Metadata]] = []
    for part in document.part.package.iter_parts():
        kind = _PARTS.get(part.content_type)
        if kind is None:
            continue
        holder = _xml_part(part)
        for paragraph in list(holder.root.iter(qn("w:p"))):
            for unit, place in paragraph_units(paragraph, WORD, _kind(paragraph, kind)):
                units.append(unit)
                places.append((holder, place))
        for element in holder.root.iter(*_ALT_HOLDERS):
            for name in _ALT_ATTRIBUTES:
                value = element.get(name) or ""
                if has_letter(value):
                    units.append(Unit((Run(value, 0),), kind="alt"))
                    places.append((holder, _Attribute(element, name)))
    core = _core_part(document, archive)
    if core is not None:
        for name in _METADATA:
            value = getattr(document.core_properties, name) or ""
            if has_letter(value):
                units.append(Unit((Run(value, 0),), kind="title"))
                places.append((core, _Metadata(name)))
    return WordDocument(archive, document, tuple(units), tuple(places))


def _xml_part(part: object) -> _Part:
    """The part's XML root and how to serialize it (python-docx models some parts; the
    notes are parsed here with its parser)."""
    member = str(part.partname).lstrip("/")  # type: ignore[attr-defined]
    element = getattr(part, "element", None)
    if element is not None:
        return _Part(member, element, lambda: part.blob)  # type: ignore[attr-defined]
    root = parse_xml(part.blob)  # type: ignore[attr-defined]
    return _Part(member, root, lambda: etree.tostring(root, encoding="UTF-8", standalone=True))


def _core_part(document: object, archive: object) -> _Part | None:
    """docProps/core.xml, when the file has one (python-docx would add one otherwise)."""
    names = archive.namelist()  # type: ignore[attr-defined]
    part = next(
        (
            p
            for p in document.part.package.iter_parts()  # type: ignore[attr-defined]
            if p.content_type == CT.OPC_CORE_PROPERTIES
        ),
        None,
    )
    if part is None or str(part.partname).lstrip("/") not in names:
        return None
    return _Part(str(part.partname).lstrip("/"), part.element, lambda: part.blob)


def _kind(paragraph: etree._Element, kind: str) -> str:
    if kind != "paragraph":
        return kind
    style = paragraph.find(f"{qn('w:pPr')}/{qn('w:pStyle')}")
    if style is not None and _HEADING.match(style.get(qn("w:val")) or ""):
        return "heading"
    parent = paragraph.getparent()
    while parent is not None:
        if parent.tag == qn("w:tc"):
            return "cell"
        parent = parent.getparent()
    return "paragraph"
