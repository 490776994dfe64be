"""summarize: English long description -> its short description (the synopsis)."""

from __future__ import annotations

import re

from model_export.data.catalog import Key
from model_export.data.clean import MAX_PAIR_CHARS, dedupe, normalise
from model_export.data.deb822 import Description

MAX_SOURCE_WORDS = 200  # longer sources are cut at the last sentence end within this many words
MIN_CUT_WORDS = 20  # ...unless that leaves fewer words than this; then the record is dropped
MIN_SOURCE_WORDS = 5  # a "long" description shorter than this has nothing to summarise

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


def truncate_words(text: str, *, max_words: int = MAX_SOURCE_WORDS) -> str | None:
    """Return text if short enough, else its prefix up to the last sentence end; None if none fits.

    Cutting at a sentence end keeps the source well-formed; dropping (rather than cutting
    mid-sentence) the rare record without one keeps targets grounded in what the source says.
    """
    words = text.split(" ")
    if len(words) <= max_words:
        return text
    for end in range(max_words, MIN_CUT_WORDS - 1, -1):
        if _SENTENCE_END.search(words[end - 1]):
            return " ".join(words[:end])
    return None


def build_summarize(english: dict[Key, Description]) -> list[dict]:
    """Records {"id", "source": long description, "target": synopsis}, cleaned and de-duplicated."""
    records = []
    for (package, _md5), desc in english.items():
        source = truncate_words(normalise(" ".join(desc.paragraphs)))
        target = normalise(desc.short)
        if not source or not target or len(target) > MAX_PAIR_CHARS:
            continue
        if len(source.split(" ")) < MIN_SOURCE_WORDS:
            continue
        records.append({"id": package, "source": source, "target": target})
    return list(dedupe(records))
