"""EPUB e-books: every XHTML content document, the navigation, the NCX table of contents
and the package's title and description are translated; every other member is copied.

No EPUB library is used for the container: the one maintained library (EbookLib) is
AGPL-3.0 and writes the book back from its own model (regenerated package document and
navigation), where we want every untouched byte kept. An EPUB is a ZIP (OCF) whose
`META-INF/container.xml` names the package document (OPF); both are read with defusedxml's
ElementTree, the chapters with `hypertext.html_units`, and the book is written back member
by member with the standard library's zipfile, `mimetype` first and uncompressed, each
member with its original name, date and compression.

Refused: a book with scripts (a `<script>` element, a manifest item marked `scripted` or
of a script type), DRM-encrypted content (`META-INF/encryption.xml` naming a content
document; font obfuscation is fine), and anything `containers.checked_zip` refuses.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeTree

from service.errors import InvalidArgument
from service.formats.containers import checked_zip, read_member, repack
from service.formats.hypertext import HtmlUnits, html_units
from service.formats.limits import FileLimits
from service.formats.units import FileOutput, StyledText, Unit, check_count

_WHAT = "EPUB e-book"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_ENCRYPTION_DATA = "{http://www.w3.org/2001/04/xmlenc#}CipherReference"
_FONT_TYPES = re.compile(r"font|\.(otf|ttf|woff2?)$", re.IGNORECASE)
_PAGE_TYPES = {"application/xhtml+xml", "text/html"}
_SCRIPT_TYPES = {"application/javascript", "text/javascript", "application/ecmascript"}
_METADATA = frozenset({"dc:title", "dc:description"})


@dataclass(frozen=True)
class _Member:
    name: str  # path inside the ZIP
    encoding: str  # how its bytes decode
    page: HtmlUnits
    first_unit: int  # its units' index in the book's list


@dataclass(frozen=True)
class EpubBook:
    archive: zipfile.ZipFile
    members: tuple[_Member, ...]
    units: tuple[Unit, ...]

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        changed: dict[str, bytes] = {}
        for member in self.members:
            count = len(member.page.units)
            mine = translations[member.first_unit : member.first_unit + count]
            changed[member.name] = member.page.write(mine).encode(member.encoding)
        return FileOutput(repack(self.archive, changed), ".epub", "application/epub+zip")


def open_epub(data: bytes, limits: FileLimits) -> EpubBook:
    archive = checked_zip(data, _WHAT, limits)
    _refuse_drm(archive)
    package = _package_path(archive)
    manifest = _manifest(archive, package)
    members: list[_Member] = []
    units: list[Unit] = []
    for name, media_type, properties in manifest:
        if "scripted" in properties or media_type in _SCRIPT_TYPES:
            raise _scripted(name)
        is_ncx = media_type == "application/x-dtbncx+xml"
        if media_type not in _PAGE_TYPES and not is_ncx:
            continue
        within = frozenset({"text"}) if is_ncx else None
        member = _read_page(archive, name, within, len(units))
        if member.page.scripted:
            raise _scripted(name)
        members.append(member)
        units.extend(member.page.units)
    opf = _read_page(archive, package, _METADATA, len(units))
    members.append(opf)
    units.extend(opf.page.units)
    return EpubBook(archive, tuple(members), tuple(units))


def _read_page(
    archive: zipfile.ZipFile, name: str, within: frozenset[str] | None, first: int
) -> _Member:
    raw = read_member(archive, name, _WHAT)
    declared = re.match(rb"<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", raw)
    encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise InvalidArgument(
            f"the {_WHAT} member {name} is not {encoding} text", field="file"
        ) from error
    page = html_units(text, f"{_WHAT} member {name}", within)
    return _Member(name, encoding, page, first)


def _parse(archive: zipfile.ZipFile, name: str) -> Element:
    try:
        return SafeTree.fromstring(read_member(archive, name, _WHAT))
    except SafeTree.ParseError as error:
        message = f"the {_WHAT} member {name} is damaged ({error})"
        raise InvalidArgument(message, field="file") from error


def _package_path(archive: zipfile.ZipFile) -> str:
    container = _parse(archive, "META-INF/container.xml")
    rootfile = container.find(f".//{_CONTAINER}rootfile")
    path = rootfile.get("full-path") if rootfile is not None else None
    if not path:
        raise InvalidArgument(
            f"the {_WHAT} names no package document in META-INF/container.xml", field="file"
        )
    return path


def _manifest(archive: zipfile.ZipFile, package: str) -> list[tuple[str, str, set[str]]]:
    """(member name, media type, properties) of every manifest item."""
    opf = _parse(archive, package)
    folder = posixpath.dirname(package)
    names = set(archive.namelist())
    items = []
    for item in opf.iter(f"{_OPF}item"):
        href = item.get("href") or ""
        name = posixpath.normpath(posixpath.join(folder, href.split("#")[0]))
        if name not in names:  # a remote resource or a broken reference: nothing to translate
            continue
        items.append(
            (name, item.get("media-type") or "", set((item.get("properties") or "").split()))
        )
    return items


def _refuse_drm(archive: zipfile.ZipFile) -> None:
    if "META-INF/encryption.xml" not in archive.namelist():
        return
    encryption = _parse(archive, "META-INF/encryption.xml")
    for reference in encryption.iter(_ENCRYPTION_DATA):
        uri = reference.get("URI") or ""
        if not _FONT_TYPES.search(uri):
            raise InvalidArgument(
                f"the {_WHAT} is encrypted ({uri}): books with DRM cannot be translated",
                field="file",
            )


def _scripted(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"the {_WHAT} contains scripts ({name}); e-books with scripts are not translated",
        field="file",
    )
