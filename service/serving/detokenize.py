"""Incremental detokenization for streams: each token costs O(window), not O(output).

Decoding the whole prefix at every token is quadratic in the output length. Instead (as
Hugging Face's TextStreamer and vLLM do) we decode a short window that starts a few tokens
back, and emit the text that window adds beyond what the same window decoded before. Text
ending in U+FFFD (a byte sequence cut in the middle of a character) is held back until the
next token completes it. The joined text equals the tokenizer's full decode.
"""

from __future__ import annotations

from service.engine.tokenizer import Tokenizer

_REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []  # kept ids (special tokens left out)
        self._prefix = 0  # window start: decoded text of ids[_prefix:_read] was emitted
        self._read = 0  # ids up to here are accounted for in `text`
        self._text = ""  # everything emitted so far, unstripped

    @property
    def text(self) -> str:
        """The output so far, as the full decode would spell it (held-back ids included)."""
        if self._read < len(self._ids):
            return self._tokenizer.decode(self._ids)
        return self._text.strip()

    def add(self, token_id: int) -> str:
        """Take one generated id; returns the text it added ("" while held back)."""
        if self._tokenizer.is_skipped(token_id):
            return ""
        self._ids.append(token_id)
        before = self._tokenizer.decode_raw(self._ids[self._prefix : self._read])
        after = self._tokenizer.decode_raw(self._ids[self._prefix :])
        if after.endswith(_REPLACEMENT) or not after.startswith(before):
            return ""  # incomplete character, or the window re-spelt itself: wait
        delta = after[len(before) :]
        self._text += delta
        self._prefix = self._read
        self._read = len(self._ids)
        return delta
