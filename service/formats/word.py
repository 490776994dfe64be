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

import functools
import io
import re
from typing import Any

import docx
from docx.opc.constants import CONTENT_TYPE as CT
from docx.oxml import parse_xml
from docx.oxml.ns import qn
from lxml import etree

from service.formats.containers import checked_zip
from service.formats.limits import FileLimits
from service.formats.office_parts import Collector, OfficeFile, Part, core_part
from service.formats.office_runs import Dialect

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
_HEADING = re.compile(r"^(heading|title|subtitle)", re.IGNORECASE)
_MEDIA = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def open_word(data: bytes, limits: FileLimits) -> OfficeFile:
    archive = checked_zip(data, "Word document", limits)
    document = docx.Document(io.BytesIO(data))
    collected = Collector(WORD)
    parts = list(document.part.package.iter_parts())
    for part in parts:
        kind = _PARTS.get(part.content_type)
        if kind is None:
            continue
        written, root = _xml_part(part)
        collected.paragraphs(written, root, qn("w:p"), functools.partial(_kind, kind=kind))
        collected.alt_text(written, root, (qn("wp:docPr"), qn("pic:cNvPr")))
    properties = document.core_properties
    collected.properties(core_part(parts, archive), properties, ("title", "subject", "comments"))
    return OfficeFile.of(archive, properties, collected, ".docx", _MEDIA)


def _xml_part(part: Any) -> tuple[Part, etree._Element]:
    """The part's XML root and how to write it back (python-docx models most parts; the
    notes are parsed here with its parser)."""
    member = str(part.partname).lstrip("/")
    element = getattr(part, "element", None)
    if element is not None:
        return Part(member, lambda: bytes(part.blob)), element
    root = parse_xml(part.blob)
    return Part(member, lambda: etree.tostring(root, encoding="UTF-8", standalone=True)), root


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
