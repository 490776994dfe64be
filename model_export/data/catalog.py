"""The parsed inputs every builder reads: English descriptions, translations, package records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from model_export.data.deb822 import Description, parse_description, read_stanzas
from model_export.data.errors import DataError

Key = tuple[str, str]  # (Package, Description-md5): the join key apt itself uses


@dataclass(frozen=True)
class Catalog:
    """Everything read from the lists, in file (= package-name) order."""

    english: dict[Key, Description]  # Translation-en
    translations: dict[str, dict[Key, Description]]  # lang -> Translation-<lang>
    packages: dict[str, dict[str, str]]  # Package -> first Packages stanza for it


def read_translation(path: Path, lang: str) -> dict[Key, Description]:
    """Read one Translation-<lang> file keyed by (Package, Description-md5)."""
    out: dict[Key, Description] = {}
    for i, stanza in enumerate(read_stanzas(path)):
        value = stanza.get(f"Description-{lang}")
        md5 = stanza.get("Description-md5")
        if value is None or md5 is None:
            raise DataError(
                f"apt list {path}: stanza {i + 1} ({stanza['Package']}) lacks "
                f"Description-{lang} or Description-md5; is this a Translation-{lang} file?"
            )
        out.setdefault((stanza["Package"], md5), parse_description(value))
    return out


def read_packages(path: Path) -> dict[str, dict[str, str]]:
    """Read a Packages file, keeping the first stanza per package name."""
    out: dict[str, dict[str, str]] = {}
    for stanza in read_stanzas(path):
        out.setdefault(stanza["Package"], stanza)
    if not any("Description-md5" in s or "Description" in s for s in out.values()):
        raise DataError(f"apt list {path} has no Description fields; is it a Packages file?")
    return out


def read_catalog(
    english: Path, translations: dict[str, Path], packages: Path, languages: Iterable[str]
) -> Catalog:
    """Read all input files into one Catalog."""
    return Catalog(
        english=read_translation(english, "en"),
        translations={lang: read_translation(translations[lang], lang) for lang in languages},
        packages=read_packages(packages),
    )
