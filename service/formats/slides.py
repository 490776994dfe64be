"""PowerPoint presentations (.pptx) with python-pptx.

Translated: the text of every shape on every slide (titles, text boxes, placeholders,
tables, grouped shapes), the speaker notes, every shape's alt text (`descr`, `title`) and
the presentation's title and subject. Inline formatting follows the words
(`office_runs`; a PowerPoint hyperlink lives in the run's properties, so it is part of the
style). Not translated: slide layouts and masters (their prompt texts are not shown in a
slide show), charts and SmartArt data, comments.

The changed slide and notes parts are written back with `containers.repack`, every other
member byte for byte.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pptx
from lxml import etree
from pptx.oxml.ns import qn

from service.formats.containers import checked_zip
from service.formats.limits import FileLimits
from service.formats.office_parts import Collector, OfficeFile, blob_part, core_part
from service.formats.office_runs import Dialect

DRAWING = Dialect(
    run=qn("a:r"),
    text=qn("a:t"),
    properties=qn("a:rPr"),
    wrappers=frozenset(),
    markers=frozenset(),
    ignored=frozenset({qn("a:pPr"), qn("a:endParaRPr")}),
)
_MEDIA = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def open_presentation(data: bytes, limits: FileLimits) -> OfficeFile:
    archive = checked_zip(data, "PowerPoint presentation", limits)
    presentation = pptx.Presentation(io.BytesIO(data))
    collected = Collector(DRAWING)
    for slide in presentation.slides:
        sheets = [(slide, "slide")]
        if slide.has_notes_slide:
            sheets.append((slide.notes_slide, "note"))
        for sheet, kind in sheets:
            part = blob_part(sheet.part)
            collected.paragraphs(part, sheet.element, qn("a:p"), _always(kind))
            collected.alt_text(part, sheet.element, (qn("p:cNvPr"),))
    properties = presentation.core_properties
    core = core_part(presentation.part.package.iter_parts(), archive)
    collected.properties(core, properties, ("title", "subject"))
    return OfficeFile.of(archive, properties, collected, ".pptx", _MEDIA)


def _always(kind: str) -> Callable[[etree._Element], str]:
    return lambda _: kind
