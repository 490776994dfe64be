"""Attention for people: a shaded table for the terminal and a heat-map PNG (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seq2seq_client.types import Attention, Hypothesis

# (upper bound of the weight, character); a cell is its character written twice
SHADES: tuple[tuple[float, str], ...] = ((0.05, "·"), (0.25, "░"), (0.5, "▒"), (0.75, "▓"))
FULL_SHADE = "█"
HEADER_CHARS = 8  # longest source token spelled out in the vertical header
LABEL_CHARS = 16  # longest target token shown as a row label


class RenderError(RuntimeError):
    """The picture cannot be made here (e.g. matplotlib is not installed)."""


def shade(weight: float) -> str:
    for bound, char in SHADES:
        if weight < bound:
            return char
    return FULL_SHADE


def attention_table(
    source_tokens: Sequence[str], target_tokens: Sequence[str], attention: Attention
) -> str:
    """Rows = target tokens, columns = source tokens (spelled downwards in the header).

    Each row ends with the source token it attended to most and that weight.
    """
    sources = [_label(source_tokens, c, HEADER_CHARS) for c in range(attention.cols)]
    targets = [_label(target_tokens, r, LABEL_CHARS) for r in range(attention.rows)]
    width = max((len(t) for t in targets), default=0)
    depth = max((len(s) for s in sources), default=0)
    lines = [
        " " * width + " " + "".join(s.ljust(depth)[i] + " " for s in sources).rstrip()
        for i in range(depth)
    ]
    for r, label in enumerate(targets):
        row = attention.row(r)
        best = max(range(len(row)), key=row.__getitem__) if row else 0
        cells = "".join(shade(w) * 2 for w in row)
        focus = f"  {sources[best].strip()} {row[best]:.2f}" if row else ""
        lines.append(f"{label.ljust(width)} {cells}{focus}")
    bounds = "  ".join(f"{char} <{bound:.2f}" for bound, char in SHADES)
    lines.append(f"weights: {bounds}  {FULL_SHADE} >={SHADES[-1][0]:.2f}")
    return "\n".join(lines)


def token_scores_table(hypothesis: Hypothesis) -> str:
    """One line per output token: the piece and its log-probability."""
    width = max((len(t) for t in hypothesis.target_tokens), default=5)
    lines = [
        f"  {token.ljust(width)}  {score:8.3f}"
        for token, score in zip(hypothesis.target_tokens, hypothesis.token_scores, strict=False)
    ]
    return "\n".join(lines)


def _label(tokens: Sequence[str], index: int, limit: int) -> str:
    token = tokens[index] if index < len(tokens) else f"#{index}"
    token = token.replace("\n", " ") or "''"
    return token if len(token) <= limit else token[: limit - 1] + "…"


def save_attention_png(
    path: Path,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    attention: Attention,
    *,
    title: str = "",
) -> None:
    """Write a heat map (target tokens down, source tokens across) to `path`."""
    try:
        from matplotlib.figure import Figure  # lazy: only this feature needs matplotlib
    except ImportError as exc:
        raise RenderError(
            "the attention heat map needs matplotlib: pip install 'matplotlib>=3.8' (the client "
            "distribution's `plot` extra)"
        ) from exc
    matrix = [list(attention.row(r)) for r in range(attention.rows)]
    xlabels = [_label(source_tokens, c, 24) for c in range(attention.cols)]
    ylabels = [_label(target_tokens, r, 24) for r in range(attention.rows)]
    figure = Figure(figsize=(2.0 + 0.32 * attention.cols, 1.5 + 0.3 * attention.rows))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(attention.cols), xlabels, rotation=90)
    axes.set_yticks(range(attention.rows), ylabels)
    axes.set_xlabel("source tokens")
    axes.set_ylabel("output tokens")
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, label="attention weight")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
