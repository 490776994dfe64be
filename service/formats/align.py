"""Word links from the model's attention: which source words each translated word came from.

The engine returns, per request that asks for it, the (target tokens x source tokens)
attention matrix of the best hypothesis. Target tokens are grouped into words (a piece that
starts a word, as the tokenizer marks it), each word is found in the translation's text, and
its attention rows are summed over the source words (words and punctuation marks apart, as
`restyle.WORD` cuts them, mapped to their tokens by the tokenizer). `keep="all"` links a
word to every source word with its attention mass; `keep="best"` to the single source word
with the most (the classic argmax alignment). A translated word spelled exactly like a
source word (a name, a number, a punctuation mark) is linked to that word instead.
benchmarks/formatting_alignment.py measures both on real formatted sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from service.engine.tokenizer import Tokenizer
from service.formats.restyle import WORD, WordLink

Keep = Literal["all", "best"]


def attention_links(
    source: str,
    translation: str,
    target_ids: Sequence[int],
    attention: np.ndarray,
    tokenizer: Tokenizer,
    keep: Keep = "all",
) -> tuple[WordLink, ...]:
    """Links from each translated word to the source words it attended to; () when the
    matrix does not match the tokens (then formatting falls back to the main style)."""
    if attention.ndim != 2 or attention.shape[0] != len(target_ids):
        return ()
    words = [(m.start(), m.end()) for m in WORD.finditer(source)]
    columns = [tokenizer.token_span(source, start, end) for start, end in words]
    links: list[WordLink] = []
    cursor = 0
    for first, last in _target_words(target_ids, tokenizer):
        text = tokenizer.decode(list(target_ids[first:last])).strip()
        found = translation.find(text, cursor) if text else -1
        if found < 0:
            continue
        cursor = found + len(text)
        rows = attention[first:last]
        weights = [
            (start, end, float(rows[:, low:high].sum()))
            for (start, end), (low, high) in zip(words, columns, strict=True)
            if high > low and high <= attention.shape[1]
        ]
        weights = [w for w in weights if w[2] > 0]
        if keep == "best" and weights:
            weights = [max(weights, key=lambda w: w[2])]
        copied = _copied_from(text, found / max(len(translation), 1), source, words)
        links.append(WordLink(found, cursor, copied or tuple(weights)))
    return tuple(links)


def _copied_from(
    text: str, place: float, source: str, words: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int, float], ...]:
    """A translated word spelled exactly as source words (a name, a number, a punctuation
    mark) is linked to the one nearest its relative place: copies are surer than attention,
    which for a full stop looks at the last word it follows."""
    same = [(start, end) for start, end in words if source[start:end] == text]
    if not same:
        return ()
    start, end = min(same, key=lambda w: abs(w[0] / max(len(source), 1) - place))
    return ((start, end, 1.0),)


def _target_words(ids: Sequence[int], tokenizer: Tokenizer) -> list[tuple[int, int]]:
    """[first, last) token ranges of the translated words, specials left out."""
    groups: list[tuple[int, int]] = []
    for index, token in enumerate(ids):
        if tokenizer.is_skipped(token):
            continue
        if groups and groups[-1][1] == index and not tokenizer.starts_word(token):
            groups[-1] = (groups[-1][0], index + 1)
        else:
            groups.append((index, index + 1))
    return groups
