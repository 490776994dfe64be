"""Files that must be refused with InvalidArgument (field "file") and a message to act on."""

from __future__ import annotations

import io
import zipfile

import pytest

from service.errors import InvalidArgument
from service.formats.limits import FileLimits
from service.formats.registry import open_file

from .conftest import members

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:r><w:t>&lol3;</w:t></w:r></w:p></w:body></w:document>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:r><w:t>&secret;</w:t></w:r></w:p></w:body></w:document>"""


def _with_member(source: bytes, name: str, data: bytes) -> bytes:
    """`source` with member `name` replaced, or added."""
    out = io.BytesIO()
    contents = {**members(source), name: data}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in contents.items():
            archive.writestr(member, content)
    return out.getvalue()


def _refused(name: str, data: bytes, match: str, limits: FileLimits | None = None) -> None:
    with pytest.raises(InvalidArgument, match=match) as caught:
        open_file(name, data, limits)
    assert caught.value.field == "file"


@pytest.mark.parametrize(
    ("name", "fixture", "match"),
    [
        (
            "report.docx",
            "guide.pdf",
            r"named as a Word document.*a PDF document; rename it to \.pdf",
        ),
        ("report.odt", "guide.docx", r"named as a OpenDocument text.*Word document.*\.docx"),
        ("slides.pptx", "deck.odp", r"PowerPoint.*OpenDocument presentation"),
        ("book.epub", "guide.odt", r"EPUB e-book.*OpenDocument text"),
        ("notes.txt", "guide.docx", r"named as a text file.*Word document"),
        ("film.srt", "guide.pdf", r"SubRip.*PDF"),
    ],
)
def test_an_extension_that_lies_is_refused_naming_both(fixtures, name, fixture, match):
    _refused(name, (fixtures / fixture).read_bytes(), match)


def test_unknown_extensions_empty_files_and_binary_text_are_refused():
    _refused("data.xlsx", b"PK\x03\x04", r"'\.xlsx' are not supported; send one of \.txt")
    _refused("notes.txt", b"", "the file is empty")
    _refused("notes.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "its content is an image")
    _refused("notes.md", "caf\xe9".encode("latin-1") + b" au lait", "not UTF-8 text")


def test_an_encrypted_office_file_is_refused():
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    _refused("secret.docx", ole, r"password-protected.*save it without a password")


def test_a_damaged_zip_is_refused(fixtures):
    data = (fixtures / "guide.docx").read_bytes()
    _refused(
        "guide.docx",
        data[: len(data) // 2],
        "not a valid Word document: its ZIP container is damaged",
    )


def test_an_encrypted_zip_member_is_refused(fixtures):
    data = bytearray((fixtures / "guide.epub").read_bytes())
    position = data.find(b"PK\x01\x02")  # the central directory: flag bit 0 = encrypted
    while position >= 0:
        length = int.from_bytes(data[position + 28 : position + 30], "little")
        if data[position + 46 : position + 46 + length] == b"OEBPS/toc.ncx":
            data[position + 8] |= 1
        position = data.find(b"PK\x01\x02", position + 4)
    _refused("guide.epub", bytes(data), r"encrypted \(OEBPS/toc.ncx\)")


def test_a_zip_bomb_is_refused_before_inflating(fixtures):
    bomb = _with_member(
        (fixtures / "guide.docx").read_bytes(), "word/media/zeros.bin", b"\0" * (4 << 20)
    )
    _refused("guide.docx", bomb, r"expands .* times; the limit is 100 \(a ZIP bomb\)")
    _refused(
        "guide.docx",
        (fixtures / "guide.docx").read_bytes(),
        r"expands to 0 MiB; the limit is 0 MiB",
        FileLimits(max_expanded_bytes=10_000),
    )


@pytest.mark.parametrize("attack", [BILLION_LAUGHS, EXTERNAL])
def test_xml_entities_are_refused(fixtures, attack):
    data = _with_member((fixtures / "guide.docx").read_bytes(), "word/document.xml", attack)
    _refused("guide.docx", data, "declares XML entities")


def test_an_epub_with_scripts_is_refused(fixtures):
    source = (fixtures / "guide.epub").read_bytes()
    chapter = members(source)["OEBPS/sections/section0001.xhtml"]
    scripted = chapter.replace(b"</body>", b"<script>alert(1)</script></body>")
    data = _with_member(source, "OEBPS/sections/section0001.xhtml", scripted)
    _refused("guide.epub", data, r"contains scripts \(OEBPS/sections/section0001.xhtml\)")


def test_a_password_protected_opendocument_is_refused(fixtures):
    source = (fixtures / "guide.odt").read_bytes()
    manifest = members(source)["META-INF/manifest.xml"].replace(
        b'manifest:media-type="application/rdf+xml"/>',
        b'manifest:media-type="application/rdf+xml"><manifest:encryption-data '
        b'manifest:checksum-type="SHA1"/></manifest:file-entry>',
        1,
    )
    _refused("guide.odt", _with_member(source, "META-INF/manifest.xml", manifest), "password")
