"""Opening ZIP-based files (Office, OpenDocument, EPUB) safely, and writing them back.

Checked on the ZIP's central directory, before a byte is inflated: the number of members,
the sum of their declared sizes (`max_expanded_bytes`: a ZIP bomb, overlapping members
included, declares what it unfolds to, and `zipfile` never inflates past a member's declared
size), each large member's compression ratio, and encryption. Then every XML member is read
once by defusedxml's streaming (SAX) parser, which refuses entity declarations (the
"billion laughs" expansion and external entities) in constant memory: no Office, OpenDocument
or EPUB file needs one.

Writing back (`repack`): python-docx, python-pptx and odfdo would re-serialize every XML
part on saving (their parsers drop ignorable whitespace), so untouched parts would change
bytes. The ZIP is rewritten member by member instead: a changed part gets its new bytes,
every other member its original bytes, name, date and compression, in the original order
(`mimetype` first and stored, as OpenDocument and EPUB require).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping
from xml.sax import SAXException
from xml.sax.handler import ContentHandler

import defusedxml.sax
from defusedxml import DefusedXmlException

from service.errors import InvalidArgument
from service.formats.limits import MIB, FileLimits

_XML_SUFFIXES = (".xml", ".rels", ".opf", ".xhtml", ".htm", ".html", ".ncx", ".svg")


def checked_zip(data: bytes, what: str, limits: FileLimits) -> zipfile.ZipFile:
    """The file's ZIP container once its sizes, ratios, encryption and XML are safe."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        message = f"the file is not a valid {what}: its ZIP container is damaged ({error})"
        raise _invalid(message) from error
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise _invalid(f"the {what} holds {len(members)} files; the limit is {limits.max_members}")
    expanded = sum(member.file_size for member in members)
    if expanded > limits.max_expanded_bytes:
        raise _invalid(
            f"the {what} expands to {expanded / MIB:.0f} MiB; the limit is "
            f"{limits.max_expanded_bytes / MIB:.0f} MiB (a ZIP bomb, or a file too large "
            "to translate)"
        )
    for member in members:
        if member.flag_bits & 0x1:
            raise _invalid(
                f"the {what} is encrypted ({member.filename}); remove the password and send "
                "it again"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > limits.ratio_floor_bytes and ratio > limits.max_compression_ratio:
            raise _invalid(
                f"the {what} member {member.filename} expands {ratio:.0f} times; the limit is "
                f"{limits.max_compression_ratio} (a ZIP bomb)"
            )
    for member in members:
        if member.filename.lower().endswith(_XML_SUFFIXES):
            check_xml(read_member(archive, member.filename, what), member.filename, what)
    return archive


def read_member(archive: zipfile.ZipFile, name: str, what: str) -> bytes:
    """One member's bytes; a damaged member is the file's fault, not ours."""
    try:
        return archive.read(name)
    except KeyError as error:
        raise _invalid(f"the {what} has no {name}: it is damaged or not a {what}") from error
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        raise _invalid(f"the {what} member {name} is damaged ({error})") from error


def check_xml(data: bytes, name: str, what: str) -> None:
    """Refuse XML with entity declarations or that is not well-formed (streamed, O(1) memory)."""
    try:
        defusedxml.sax.parseString(data, ContentHandler(), forbid_entities=True)
    except DefusedXmlException as error:
        raise _invalid(
            f"the {what} member {name} declares XML entities ({error}); documents never need "
            "them, and they are how entity-expansion attacks work"
        ) from error
    except SAXException as error:
        raise _invalid(f"the {what} member {name} is not well-formed XML ({error})") from error


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message, field="file")


def repack(archive: zipfile.ZipFile, changed: Mapping[str, bytes]) -> bytes:
    """`archive` with the members named in `changed` replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for info in archive.infolist():
            data = changed.get(info.filename)
            package.writestr(info, data if data is not None else archive.read(info))
    return out.getvalue()
