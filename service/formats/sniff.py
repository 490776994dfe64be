"""What a file's bytes really are, whatever its name says.

A file whose extension lies (a PDF named .docx, a Word file named .odt, a picture named
.srt) is refused with a message that names both, rather than failing deep inside a library
or, worse, being "translated" as text. Decided from the magic number and, for ZIP-based
formats, from the member that names the type (OpenDocument's and EPUB's `mimetype`, OOXML's
`[Content_Types].xml` main part).
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from dataclasses import dataclass

from service.errors import InvalidArgument

# kind -> how a message names it
KINDS = {
    "docx": "a Word document (.docx)",
    "pptx": "a PowerPoint presentation (.pptx)",
    "xlsx": "an Excel workbook (.xlsx)",
    "odt": "an OpenDocument text (.odt)",
    "odp": "an OpenDocument presentation (.odp)",
    "ods": "an OpenDocument spreadsheet (.ods)",
    "odf": "another OpenDocument file",
    "epub": "an EPUB e-book (.epub)",
    "zip": "a ZIP archive",
    "damaged zip": "a damaged ZIP container",
    "pdf": "a PDF document",
    "ole": "an encrypted Office document or a legacy .doc/.ppt/.xls file",
    "image": "an image",
    "binary": "binary data",
    "text": "text",
}

_MAGIC = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"\x89PNG", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"BM", "image"),
)
_ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/epub+zip": "epub",
}
_OOXML_MAIN = re.compile(
    rb"ContentType=\"application/vnd\.(?:openxmlformats-officedocument|ms-[a-z]+)\."
    rb"(wordprocessingml|presentationml|spreadsheetml|word|powerpoint|excel)"
)
_OOXML_KINDS = {
    b"wordprocessingml": "docx",
    b"word": "docx",
    b"presentationml": "pptx",
    b"powerpoint": "pptx",
    b"spreadsheetml": "xlsx",
    b"excel": "xlsx",
}


def sniff(data: bytes) -> str:
    """One of KINDS' keys."""
    if b"%PDF-" in data[:1024]:
        return "pdf"
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(data)
    return "text" if _is_text(data) else "binary"


def _zip_kind(data: bytes) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        if "mimetype" in names:
            info = archive.getinfo("mimetype")
            if info.file_size <= 100:
                declared = archive.read("mimetype").decode("ascii", "replace").strip()
                return _ODF_TYPES.get(declared, "odf" if "opendocument" in declared else "zip")
        if "[Content_Types].xml" in names:
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size <= 1_000_000:
                types = archive.read("[Content_Types].xml")
                kinds = {_OOXML_KINDS[m.group(1)] for m in _OOXML_MAIN.finditer(types)}
                for kind in ("docx", "pptx", "xlsx"):
                    if kind in kinds:
                        return kind
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError):
        return "damaged zip"
    return "zip"


def _is_text(data: bytes) -> bool:
    """UTF-16 with a BOM, or no NUL byte in the first 64 KiB (whether it is UTF-8 is for
    the text formats to say, with a better message than "binary")."""
    return data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" not in data[:65536]


@dataclass(frozen=True)
class TextFile:
    text: str  # the characters, byte-order mark left out
    codec: str  # "utf-8", "utf-16-le" or "utf-16-be"
    bom: bytes  # written back as it came

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec)

    def media_type(self, kind: str) -> str:
        """`kind` (text/plain...) with this file's charset."""
        return f"{kind}; charset={self.codec[:6]}"


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def read_text(data: bytes, what: str) -> TextFile:
    """A text file's characters: UTF-8 (with or without a BOM) or UTF-16 with its BOM."""
    bom, codec = next(((b, c) for b, c in _BOMS if data.startswith(b)), (b"", "utf-8"))
    try:
        text = data[len(bom) :].decode(codec)
    except UnicodeDecodeError as error:
        raise InvalidArgument(
            f"the {what} is not UTF-8 text (byte {error.start} is not valid UTF-8); save it "
            "as UTF-8 and send it again",
            field="file",
        ) from error
    return TextFile(text, codec, bom)
