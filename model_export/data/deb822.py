"""Read apt index files (Packages, Translation-xx) into deb822 stanzas.

apt stores its lists compressed (lz4 by default, sometimes xz or gz) or plain; we accept
all four so a fixture can be plain text and a fresh `apt-get update` can be read as is.
"""

from __future__ import annotations

import gzip
import lzma
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from model_export.data.errors import DataError


def read_index(path: Path) -> str:
    """Return the decompressed UTF-8 text of one index file, or raise DataError naming it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read apt list {path}: {exc}") from exc
    if not raw:
        raise DataError(f"apt list {path} is empty")
    try:
        if path.suffix == ".lz4":
            import lz4.frame  # imported here: only needed for apt's default compression

            raw = lz4.frame.decompress(raw)
        elif path.suffix == ".xz":
            raw = lzma.decompress(raw)
        elif path.suffix == ".gz":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (RuntimeError, lzma.LZMAError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"apt list {path} is corrupt: {exc}") from exc
    if not text.strip():
        raise DataError(f"apt list {path} is empty after decompression")
    return text


def parse_stanzas(text: str, *, origin: str = "<text>") -> Iterator[dict[str, str]]:
    """Yield each stanza as {field: value}; continuation lines keep their leading space removed.

    A multi-line value is returned as "first line\\nline2\\n..." with exactly one leading
    space stripped from each continuation line, so ` .` becomes `.` (a paragraph break) and
    deeper indentation (verbatim lines) survives.
    """
    fields: dict[str, str] = {}
    last: str | None = None
    # Split on "\n" only: str.splitlines() would also break on U+2028 etc. inside values.
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip(" \t"):
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is None:
                raise DataError(f"{origin}:{lineno}: continuation line outside a field")
            fields[last] += "\n" + line[1:]
        else:
            name, sep, value = line.partition(":")
            if not sep or not name or " " in name:
                raise DataError(f"{origin}:{lineno}: not a deb822 field line: {line[:60]!r}")
            last = name
            fields[name] = value.strip()
    if fields:
        yield fields


def read_stanzas(path: Path, *, required: str = "Package") -> list[dict[str, str]]:
    """Read and parse one index file; every stanza must carry `required`, and there must be one."""
    stanzas = list(parse_stanzas(read_index(path), origin=str(path)))
    if not stanzas:
        raise DataError(f"apt list {path} holds no deb822 stanzas")
    for i, stanza in enumerate(stanzas):
        if required not in stanza:
            raise DataError(f"apt list {path}: stanza {i + 1} has no {required} field")
    return stanzas


@dataclass(frozen=True)
class Description:
    """One package description split the way apt shows it."""

    short: str  # the synopsis line
    paragraphs: tuple[str, ...]  # long description, one string per ` .`-separated paragraph


def parse_description(value: str) -> Description:
    """Split a Description-xx value into synopsis and paragraphs (lines joined by spaces)."""
    first, *rest = value.split("\n")
    paragraphs: list[str] = []
    current: list[str] = []
    for line in rest:
        # Translators sometimes write " \xa0" for " ."; any blank line is a paragraph break.
        if line.strip() in (".", ""):
            if current:
                paragraphs.append(" ".join(current))
            current = []
        else:
            current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    return Description(short=first.strip(), paragraphs=tuple(paragraphs))
