"""Re-breaking a translated block into as many lines as its source had (subtitles,
hard-wrapped Markdown paragraphs): breaks go at the spaces nearest to equal line lengths,
so a two-line cue stays two balanced lines."""

from __future__ import annotations

from collections.abc import Sequence


def break_points(visible: str, lines: int) -> list[int]:
    """Indexes of the spaces in `visible` to turn into line breaks (at most lines - 1)."""
    spaces = [i for i, c in enumerate(visible) if c == " "]
    chosen: list[int] = []
    for k in range(1, lines):
        target = len(visible) * k / lines
        candidates = [s for s in spaces if s not in chosen and (not chosen or s > chosen[-1])]
        if not candidates:
            break
        chosen.append(min(candidates, key=lambda s: abs(s - target)))
    return chosen


def wrap_segments(segments: Sequence[tuple[str, bool]], lines: int, newline: str) -> str:
    """`segments` are (text, visible): markup (not visible) never takes a break. The visible
    text is broken into `lines` lines with `newline`."""
    visible = "".join(text for text, shown in segments if shown)
    breaks = set(break_points(visible, lines))
    out: list[str] = []
    position = 0
    for text, shown in segments:
        if not shown:
            out.append(text)
            continue
        for char in text:
            out.append(newline if position in breaks else char)
            position += 1
    return "".join(out)
