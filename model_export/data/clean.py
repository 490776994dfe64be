"""Text cleaning shared by every dataset: one normal form, no control characters, no duplicates."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

MAX_PAIR_CHARS = 400  # sentence pairs / paragraphs longer than this are dropped (not truncated)

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFC, whitespace runs -> one space, control and format characters dropped, stripped.

    Whitespace is mapped before dropping control characters so a tab still separates words.
    """
    text = unicodedata.normalize("NFC", _SPACE.sub(" ", text))
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    return _SPACE.sub(" ", text).strip()


def usable_pair(source: str, target: str, *, max_chars: int = MAX_PAIR_CHARS) -> bool:
    """True if both sides are non-empty and neither is absurdly long."""
    return bool(source) and bool(target) and len(source) <= max_chars and len(target) <= max_chars


def dedupe(
    records: Iterable[dict], *, key: tuple[str, ...] = ("source", "target")
) -> Iterator[dict]:
    """Drop records whose `key` fields repeat an earlier one's; the first (package order) wins."""
    seen: set[tuple] = set()
    for record in records:
        k = tuple(record[f] for f in key)
        if k not in seen:
            seen.add(k)
            yield record
