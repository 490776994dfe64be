"""Writing runs back as markup: each style is a chain of (open, close) markup pairs.

Used by the markup-based formats (Markdown, HTML and EPUB, SubRip tags). Neighbouring runs
share the part of their chains they have in common (`*a**b***`, not `*a**\\*\\*b***`, which
Markdown would read differently), and the whitespace at a style boundary moves to the shared
outer chain (`**bold** text`, never `**bold **text`, which Markdown does not read as bold).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

Chain = tuple[tuple[str, str], ...]  # (open markup, close markup), outermost first
C = TypeVar("C", bound=tuple[Hashable, ...])  # any chain: equal items mean equal formatting


def common_prefix(a: tuple[Hashable, ...], b: tuple[Hashable, ...]) -> int:
    count = 0
    while count < min(len(a), len(b)) and a[count] == b[count]:
        count += 1
    return count


def hug(runs: Sequence[tuple[str, C]]) -> list[tuple[str, C]]:
    """Whitespace at each edge where the chain changes moved to the chains' common part."""
    edged: list[tuple[str, C]] = []
    empty: C = ()  # type: ignore[assignment]
    padded: list[tuple[str, C]] = [("", empty), *runs, ("", empty)]
    for index in range(1, len(padded) - 1):
        text, chain = padded[index]
        before: C = chain[: common_prefix(padded[index - 1][1], chain)]  # type: ignore[assignment]
        after: C = chain[: common_prefix(padded[index + 1][1], chain)]  # type: ignore[assignment]
        body = text.strip()
        if not body:
            edged.append((text, before if len(before) <= len(after) else after))
            continue
        lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
        edged.extend([(lead, before), (body, chain), (trail, after)])
    merged: list[tuple[str, C]] = []
    for text, chain in edged:
        if not text:
            continue
        if merged and merged[-1][1] == chain:
            merged[-1] = (merged[-1][0] + text, chain)
        else:
            merged.append((text, chain))
    return merged


def render(
    runs: Sequence[tuple[str, Chain]], escape: Callable[[str, Chain], str]
) -> list[tuple[str, bool]]:
    """(text, visible) segments: markup is not visible (a line break never goes in it)."""
    out: list[tuple[str, bool]] = []
    current: Chain = ()
    for text, chain in hug(runs):
        common = common_prefix(current, chain)
        out.extend((close, False) for _, close in reversed(current[common:]))
        out.extend((opening, False) for opening, _ in chain[common:])
        out.append((escape(text, chain), True))
        current = chain
    out.extend((close, False) for _, close in reversed(current))
    return out
