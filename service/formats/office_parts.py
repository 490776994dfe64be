"""What Word and PowerPoint files share once their parts are read: collecting units (paragraph
runs, alt text attributes, document properties) and writing the changed parts back."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from service.formats.containers import repack
from service.formats.office_runs import Dialect, OfficeUnit, paragraph_units, write_unit
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count
from service.text.plain import has_letter

CORE_PROPERTIES = "application/vnd.openxmlformats-package.core-properties+xml"


@dataclass(frozen=True)
class Part:
    member: str  # its name in the ZIP
    serialize: Callable[[], bytes]  # its XML as written back


@dataclass(frozen=True)
class Attribute:
    element: etree._Element
    name: str  # descr, title


@dataclass(frozen=True)
class Property:
    name: str  # a core property: title, subject...


Place = OfficeUnit | Attribute | Property


def blob_part(part: Any) -> Part:
    """A python-docx / python-pptx part written back from its own serialization."""
    return Part(str(part.partname).lstrip("/"), lambda: bytes(part.blob))


def core_part(parts: Iterable[Any], archive: zipfile.ZipFile) -> Part | None:
    """docProps/core.xml, only when the file has one (the libraries would add one)."""
    for part in parts:
        if part.content_type == CORE_PROPERTIES:
            found = blob_part(part)
            return found if found.member in archive.namelist() else None
    return None


@dataclass
class Collector:
    """The units of an Office file, in reading order, and where each goes back."""

    dialect: Dialect
    units: list[Unit] = field(default_factory=list)
    places: list[tuple[Part, Place]] = field(default_factory=list)

    def paragraphs(
        self, part: Part, root: etree._Element, tag: str, kind: Callable[[etree._Element], str]
    ) -> None:
        for paragraph in list(root.iter(tag)):
            for unit, place in paragraph_units(paragraph, self.dialect, kind(paragraph)):
                self._add(unit, part, place)

    def alt_text(self, part: Part, root: etree._Element, holders: Sequence[str]) -> None:
        for element in root.iter(*holders):
            for name in ("descr", "title"):
                value = element.get(name) or ""
                if has_letter(value):
                    self._add(Unit((Run(value, 0),), kind="alt"), part, Attribute(element, name))

    def properties(self, part: Part | None, properties: Any, names: Sequence[str]) -> None:
        if part is None:
            return
        for name in names:
            value = getattr(properties, name) or ""
            if has_letter(value):
                self._add(Unit((Run(value, 0),), kind="title"), part, Property(name))

    def _add(self, unit: Unit, part: Part, place: Place) -> None:
        self.units.append(unit)
        self.places.append((part, place))


@dataclass(frozen=True)
class OfficeFile:
    archive: zipfile.ZipFile
    properties: Any  # the library's core properties object
    dialect: Dialect
    units: tuple[Unit, ...]
    places: tuple[tuple[Part, Place], ...]
    extension: str
    media_type: str

    @classmethod
    def of(
        cls,
        archive: zipfile.ZipFile,
        properties: Any,
        collected: Collector,
        extension: str,
        media_type: str,
    ) -> OfficeFile:
        return cls(
            archive,
            properties,
            collected.dialect,
            tuple(collected.units),
            tuple(collected.places),
            extension,
            media_type,
        )

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        changed: dict[str, Part] = {}
        for (part, place), runs in zip(self.places, translations, strict=True):
            text = "".join(run.text for run in runs)
            if isinstance(place, OfficeUnit):
                write_unit(place, runs, self.dialect)
            elif isinstance(place, Attribute):
                place.element.set(place.name, text)
            else:
                setattr(self.properties, place.name, text)
            changed[part.member] = part
        data = repack(self.archive, {name: part.serialize() for name, part in changed.items()})
        return FileOutput(data, self.extension, self.media_type)
