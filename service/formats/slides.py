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
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pptx
from lxml import etree
from pptx.opc.constants import CONTENT_TYPE as CT
from pptx.oxml.ns import qn

from service.formats.containers import checked_zip, repack
from service.formats.limits import FileLimits
from service.formats.office_runs import Dialect, OfficeUnit, paragraph_units, write_unit
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count
from service.text.plain import has_letter

DRAWING = Dialect(
    run=qn("a:r"),
    text=qn("a:t"),
    properties=qn("a:rPr"),
    wrappers=frozenset(),
    markers=frozenset(),
    ignored=frozenset({qn("a:pPr"), qn("a:endParaRPr")}),
)
_ALT_ATTRIBUTES = ("descr", "title")
_METADATA = ("title", "subject")


@dataclass(frozen=True)
class _Part:
    member: str  # its name in the ZIP
    serialize: Callable[[], bytes]


@dataclass(frozen=True)
class _Attribute:
    element: etree._Element
    name: str


@dataclass(frozen=True)
class _Metadata:
    name: str  # a core property


@dataclass(frozen=True)
class Presentation:
    archive: zipfile.ZipFile
    presentation: Any  # pptx.presentation.Presentation
    units: tuple[Unit, ...]
    places: tuple[tuple[_Part, OfficeUnit | _Attribute | _Metadata], ...]

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        changed: dict[str, _Part] = {}
        for (part, place), runs in zip(self.places, translations, strict=True):
            text = "".join(run.text for run in runs)
            if isinstance(place, OfficeUnit):
                write_unit(place, runs, DRAWING)
            elif isinstance(place, _Attribute):
                place.element.set(place.name, text)
            else:
                setattr(self.presentation.core_properties, place.name, text)
            changed[part.member] = part
        data = repack(self.archive, {name: part.serialize() for name, part in changed.items()})
        return FileOutput(
            data,
            ".pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        )


def open_presentation(data: bytes, limits: FileLimits) -> Presentation:
    archive = checked_zip(data, "PowerPoint presentation", limits)
    presentation = pptx.Presentation(io.BytesIO(data))
    units: list[Unit] = []
    places: list[tuple[_Part, OfficeUnit | _Attribute | _Metadata]] = []
    for slide in presentation.slides:
        sheets = [(slide, "slide")]
        if slide.has_notes_slide:
            sheets.append((slide.notes_slide, "note"))
        for sheet, kind in sheets:
            part = _Part(str(sheet.part.partname).lstrip("/"), _blob_of(sheet.part))
            root = sheet.element
            for paragraph in list(root.iter(qn("a:p"))):
                for unit, place in paragraph_units(paragraph, DRAWING, kind):
                    units.append(unit)
                    places.append((part, place))
            for element in root.iter(qn("p:cNvPr")):
                for name in _ALT_ATTRIBUTES:
                    value = element.get(name) or ""
                    if has_letter(value):
                        units.append(Unit((Run(value, 0),), kind="alt"))
                        places.append((part, _Attribute(element, name)))
    core = next(
        (
            p
            for p in presentation.part.package.iter_parts()
            if p.content_type == CT.OPC_CORE_PROPERTIES
        ),
        None,
    )
    if core is not None and str(core.partname).lstrip("/") in archive.namelist():
        core_part = _Part(str(core.partname).lstrip("/"), _blob_of(core))
        for name in _METADATA:
            value = getattr(presentation.core_properties, name) or ""
            if has_letter(value):
                units.append(Unit((Run(value, 0),), kind="title"))
                places.append((core_part, _Metadata(name)))
    return Presentation(archive, presentation, tuple(units), tuple(places))


def _blob_of(part: Any) -> Callable[[], bytes]:
    return lambda: bytes(part.blob)
