"""translate-en-<lang>: English description text paired with its human translation."""

from __future__ import annotations

from collections.abc import Iterator

from model_export.data.catalog import Key
from model_export.data.clean import dedupe, normalise, usable_pair
from model_export.data.deb822 import Description


def _pairs(english: Description, translated: Description) -> Iterator[tuple[str, str]]:
    """The synopsis pair, plus paragraph pairs when both sides have the same paragraph count.

    Equal counts are the only alignment signal the files give; translators keep the ` .`
    structure in the vast majority of cases, so the count check rejects the misaligned rest.
    """
    yield english.short, translated.short
    if len(english.paragraphs) == len(translated.paragraphs):
        yield from zip(english.paragraphs, translated.paragraphs, strict=True)


def build_translate(
    english: dict[Key, Description], translated: dict[Key, Description]
) -> list[dict]:
    """Records {"id", "source", "target"} in package order, cleaned and de-duplicated."""
    records = []
    for key, en in english.items():
        tr = translated.get(key)
        if tr is None:
            continue
        for source, target in _pairs(en, tr):
            source, target = normalise(source), normalise(target)
            if usable_pair(source, target):
                records.append({"id": key[0], "source": source, "target": target})
    return list(dedupe(records))
