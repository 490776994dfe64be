"""Factories for the format tests: a deterministic stand-in translator and fixture files.

`mirror` "translates" a sentence by reversing its word order and upper-casing it, and links
each output word to the source word it came from, as the model's attention would: the
formatting of `Click **here** now` must land on HERE in `NOW HERE CLICK`. Reversal makes a
misplaced style visible, which an identity transform would hide.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from service.formats.pipeline import translate_file
from service.formats.plan import Sentence
from service.formats.restyle import Translation, WordLink
from service.formats.units import FileOutput

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "files"


def mirror_one(sentence: str, keep: Sequence[str] = ()) -> Translation:
    """Words reversed and upper-cased; a `keep` term is one word, unchanged (as the engine's
    protected terms come out)."""
    kept = "|".join(re.escape(term) for term in sorted(keep, key=len, reverse=True))
    pattern = re.compile(f"{kept}|\\S+" if kept else r"\S+")
    words = [(m.start(), m.end()) for m in pattern.finditer(sentence)]
    out: list[str] = []
    links: list[WordLink] = []
    position = 0
    for start, end in reversed(words):
        if out:
            position += 1
        word = sentence[start:end]
        word = word if word in keep else word.upper()
        links.append(WordLink(position, position + len(word), ((start, end, 1.0),)))
        out.append(word)
        position += len(word)
    return Translation(" ".join(out), tuple(links))


def mirror(sentences: Sequence[Sentence]) -> list[Translation]:
    return [mirror_one(s.text, s.keep) for s in sentences]


def mirrored(text: str) -> str:
    return " ".join(reversed(text.split())).upper()


def always(text: str) -> bool:
    return True


def translate(name: str, data: bytes) -> FileOutput:
    return translate_file(name, data, language="en", fits=always, translator=mirror)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


def members(data: bytes) -> dict[str, bytes]:
    """A ZIP-based file's members by name."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def untouched_members_are_identical(source: bytes, out: bytes, changed: set[str]) -> None:
    """Every member but `changed` byte for byte; the same names in the same order."""
    before, after = members(source), members(out)
    assert list(before) == list(after)
    assert {name for name in before if before[name] != after[name]} == changed
