"""Which format reads a file: chosen by its name, checked against what its bytes are.

`open_file(name, data)` is the one entry point: an unknown extension, a file whose
extension lies about its content, an encrypted or damaged file are refused here with
InvalidArgument (field "file") and a message a person can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from service.errors import InvalidArgument, ServiceError
from service.formats.epub import open_epub
from service.formats.limits import FileLimits
from service.formats.markdown import open_markdown
from service.formats.opendocument import open_opendocument
from service.formats.pdf import open_pdf
from service.formats.plaintext import open_plain_text
from service.formats.slides import open_presentation
from service.formats.sniff import KINDS, sniff
from service.formats.subtitles import open_subtitles
from service.formats.units import OpenedFile
from service.formats.webpage import open_web_page
from service.formats.word import open_word

log = logging.getLogger(__name__)

Opener = Callable[[bytes, FileLimits], OpenedFile]


@dataclass(frozen=True)
class FileFormat:
    name: str  # "docx"
    title: str  # how a message names it: "Word document"
    extensions: tuple[str, ...]  # lower case, with the dot
    kinds: frozenset[str]  # what sniff() may say its bytes are
    open: Opener


FORMATS: tuple[FileFormat, ...] = (
    FileFormat("txt", "text file", (".txt",), frozenset({"text"}), open_plain_text),
    FileFormat("srt", "SubRip subtitle file", (".srt",), frozenset({"text"}), open_subtitles),
    FileFormat("md", "Markdown file", (".md", ".markdown"), frozenset({"text"}), open_markdown),
    FileFormat("html", "web page", (".html", ".htm"), frozenset({"text"}), open_web_page),
    FileFormat("epub", "EPUB e-book", (".epub",), frozenset({"epub"}), open_epub),
    FileFormat("docx", "Word document", (".docx",), frozenset({"docx"}), open_word),
    FileFormat(
        "pptx", "PowerPoint presentation", (".pptx",), frozenset({"pptx"}), open_presentation
    ),
    FileFormat("odt", "OpenDocument text", (".odt",), frozenset({"odt"}), open_opendocument("odt")),
    FileFormat("pdf", "PDF document", (".pdf",), frozenset({"pdf"}), open_pdf),
    FileFormat(
        "odp",
        "OpenDocument presentation",
        (".odp",),
        frozenset({"odp"}),
        open_opendocument("odp"),
    ),
)


def extensions() -> tuple[str, ...]:
    return tuple(ext for fmt in FORMATS for ext in fmt.extensions)


def format_for(name: str) -> FileFormat:
    """The format a file name's extension names; InvalidArgument listing ours if none."""
    suffix = PurePath(name).suffix.lower()
    for fmt in FORMATS:
        if suffix in fmt.extensions:
            return fmt
    raise InvalidArgument(
        f"files of type '{suffix or name}' are not supported; send one of "
        f"{', '.join(extensions())}",
        field="file",
    )


def open_file(name: str, data: bytes, limits: FileLimits | None = None) -> OpenedFile:
    """The parsed file, or InvalidArgument saying why it cannot be translated."""
    fmt = format_for(name)
    if not data:
        raise InvalidArgument("the file is empty", field="file")
    kind = sniff(data)
    if kind not in fmt.kinds:
        raise InvalidArgument(_mismatch(name, fmt, kind), field="file")
    try:
        return fmt.open(data, limits or FileLimits())
    except (ServiceError, MemoryError):
        raise
    except Exception as error:  # a library that could not parse the file: the file's fault
        log.warning("could not read %s as a %s", name, fmt.title, exc_info=True)
        raise InvalidArgument(
            f"the file could not be read as a {fmt.title} ({type(error).__name__}: {error}); "
            "it may be damaged",
            field="file",
        ) from error


def _mismatch(name: str, fmt: FileFormat, kind: str) -> str:
    if kind == "damaged zip" and fmt.kinds & {"docx", "pptx", "odt", "odp", "epub"}:
        return f"'{name}' is not a valid {fmt.title}: its ZIP container is damaged"
    if kind == "ole" and fmt.name in ("docx", "pptx"):
        return (
            f"'{name}' is password-protected (an encrypted Office file) or a legacy binary "
            "Office file; save it without a password in the .docx/.pptx format"
        )
    right = [f.extensions[0] for f in FORMATS if kind in f.kinds and kind != "text"]
    hint = f"; rename it to {right[0]}" if right else ""
    return f"'{name}' is named as a {fmt.title}, but its content is {KINDS[kind]}{hint}"
