"""Text <-> token ids through the bundle's Hugging Face `tokenizers` file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from service.bundle import SpecialTokens
from service.errors import InvalidArgument


@dataclass(frozen=True)
class EncodedText:
    ids: tuple[int, ...]  # token ids, EOS last
    tokens: tuple[str, ...]  # the pieces, same length as ids


class TextTokenizer:
    """Wraps one tokenizer.json with the bundle's special token ids."""

    def __init__(self, path: Path, special: SpecialTokens) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        self._special = special
        self._skip_on_decode = {
            i
            for i in (special.pad_id, special.bos_id, special.eos_id, special.no_answer_id)
            if i is not None
        }

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, *, max_tokens: int, field: str) -> EncodedText:
        """Encode `text` and append EOS; refuse (naming `field`) rather than truncate."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        ids = [*encoding.ids, self._special.eos_id]
        if len(ids) > max_tokens:
            raise InvalidArgument(
                f"{field} is {len(ids)} tokens long; this model accepts at most {max_tokens}",
                field=field,
            )
        tokens = [*encoding.tokens, self.id_to_token(self._special.eos_id)]
        return EncodedText(ids=tuple(ids), tokens=tuple(tokens))

    def encode_plain(self, text: str) -> tuple[int, ...]:
        """Token ids of `text` as it would appear inside an output: no EOS, no limit."""
        return tuple(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def token_span(self, text: str, start: int, end: int) -> tuple[int, int]:
        """The tokens of `encode(text)` that cover characters [start, end): [first, last)."""
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        covering = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
        return (covering[0], covering[-1] + 1) if covering else (0, 0)

    @property
    def unk_id(self) -> int:
        return self._special.unk_id

    def starts_word(self, token_id: int) -> bool:
        """The piece begins a new word: SentencePiece's '▁' or byte-level BPE's 'Ġ', or it
        is punctuation (which may end a span and start the next)."""
        piece = self.id_to_token(token_id)
        return piece[:1] in ("▁", "Ġ") or not piece[:1].isalnum()

    def id_to_token(self, token_id: int) -> str:
        return self._tokenizer.id_to_token(token_id) or f"<{token_id}>"

    def is_skipped(self, token_id: int) -> bool:
        """Special ids (pad, bos, eos, no-answer) that never reach the text."""
        return token_id in self._skip_on_decode

    def decode_raw(self, ids: list[int] | tuple[int, ...]) -> str:
        """The tokenizer's decode of exactly these ids, whitespace kept (for streaming)."""
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)

    def decode(self, ids: list[int] | tuple[int, ...]) -> str:
        return self.decode_raw([i for i in ids if i not in self._skip_on_decode]).strip()
