"""Text <-> token ids, as the bundle's tokenizer spells them (`TokenizerSpec`).

Two implementations behind one interface (`Tokenizer`): `TextTokenizer` over a Hugging Face
`tokenizers` file (our own models, and BART's byte-level BPE), and `SentencePieceTokenizer`
over Marian's pair of SentencePiece models with its `vocab.json`. `open_tokenizer` picks the
one a manifest names. Ids must equal what the original Hugging Face tokenizer gives.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tokenizers import Tokenizer as HFTokenizer

from service.bundle import BundleManifest, SpecialTokens, TokenizerSpec
from service.errors import InvalidArgument


@dataclass(frozen=True)
class EncodedText:
    ids: tuple[int, ...]  # token ids, EOS last
    tokens: tuple[str, ...]  # the pieces, same length as ids


class Tokenizer(Protocol):
    """What the engine, the data plane and the detokenizer use of a tokenizer."""

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, *, max_tokens: int, field: str) -> EncodedText:
        """Ids of `text`, EOS last; refuses (naming `field`) rather than truncates."""
        ...

    def count(self, text: str) -> int:
        """Source tokens `text` would take, EOS included (what `max_tokens` is checked on)."""
        ...

    def encode_plain(self, text: str) -> tuple[int, ...]:
        """Token ids of `text` as it would appear inside an output: no EOS, no limit."""
        ...

    def token_span(self, text: str, start: int, end: int) -> tuple[int, int]:
        """The tokens of `encode(text)` that cover characters [start, end): [first, last)."""
        ...

    @property
    def unk_id(self) -> int: ...

    def starts_word(self, token_id: int) -> bool:
        """The piece begins a new word, or is punctuation."""
        ...

    def id_to_token(self, token_id: int) -> str: ...

    def is_skipped(self, token_id: int) -> bool:
        """Special ids that never reach the text."""
        ...

    def decode_raw(self, ids: list[int] | tuple[int, ...]) -> str:
        """The decode of exactly these ids, whitespace kept (for streaming)."""
        ...

    def decode(self, ids: list[int] | tuple[int, ...]) -> str: ...


def _starts_word(piece: str) -> bool:
    """The piece begins a new word: SentencePiece's '▁' or byte-level BPE's 'Ġ', or it is
    punctuation (which may end a span and start the next)."""
    return piece[:1] in ("▁", "Ġ") or not piece[:1].isalnum()


def _covering(spans: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """[first, last) of the (start, end) character spans that overlap [start, end)."""
    covering = [i for i, (a, b) in enumerate(spans) if a < end and b > start]
    return (covering[0], covering[-1] + 1) if covering else (0, 0)


def _refuse_long(ids: list[int], max_tokens: int, field: str) -> None:
    if len(ids) > max_tokens:
        raise InvalidArgument(
            f"{field} is {len(ids)} tokens long; this model accepts at most {max_tokens}",
            field=field,
        )


class TextTokenizer:
    """Wraps one tokenizer.json with the bundle's special token ids.

    Without `post_processor` EOS is appended here (our models' training did the same);
    with it, the file's own template adds the special tokens (BART's `<s> ... </s>`), and
    every special token of the file is left out of the text, as Hugging Face's
    `decode(skip_special_tokens=True)` does.
    """

    def __init__(self, path: Path, special: SpecialTokens, *, post_processor: bool = False):
        self._tokenizer = HFTokenizer.from_file(str(path))
        self._special = special
        self._post_processor = post_processor
        skipped = {special.pad_id, special.bos_id, special.eos_id, special.no_answer_id}
        if post_processor:
            skipped |= {
                i for i, t in self._tokenizer.get_added_tokens_decoder().items() if t.special
            }
        self._skip_on_decode = {i for i in skipped if i is not None}

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, *, max_tokens: int, field: str) -> EncodedText:
        """Encode `text`, EOS last; refuse (naming `field`) rather than truncate."""
        encoding = self._tokenizer.encode(text, add_special_tokens=self._post_processor)
        ids, tokens = list(encoding.ids), list(encoding.tokens)
        if not self._post_processor:
            ids.append(self._special.eos_id)
            tokens.append(self.id_to_token(self._special.eos_id))
        _refuse_long(ids, max_tokens, field)
        return EncodedText(ids=tuple(ids), tokens=tuple(tokens))

    def count(self, text: str) -> int:
        """Source tokens `text` would take, EOS included (what `max_tokens` is checked on)."""
        if self._post_processor:
            return len(self._tokenizer.encode(text, add_special_tokens=True).ids)
        return len(self.encode_plain(text)) + 1

    def encode_plain(self, text: str) -> tuple[int, ...]:
        """Token ids of `text` as it would appear inside an output: no EOS, no limit."""
        return tuple(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def token_span(self, text: str, start: int, end: int) -> tuple[int, int]:
        """The tokens of `encode(text)` that cover characters [start, end): [first, last)."""
        encoding = self._tokenizer.encode(text, add_special_tokens=self._post_processor)
        spans = [
            (a, b) if not special else (0, 0)
            for (a, b), special in zip(encoding.offsets, encoding.special_tokens_mask, strict=True)
        ]
        return _covering(spans, start, end)

    @property
    def unk_id(self) -> int:
        return self._special.unk_id

    def starts_word(self, token_id: int) -> bool:
        return _starts_word(self.id_to_token(token_id))

    def id_to_token(self, token_id: int) -> str:
        return self._tokenizer.id_to_token(token_id) or f"<{token_id}>"

    def is_skipped(self, token_id: int) -> bool:
        return token_id in self._skip_on_decode

    def decode_raw(self, ids: list[int] | tuple[int, ...]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)

    def decode(self, ids: list[int] | tuple[int, ...]) -> str:
        return self.decode_raw([i for i in ids if i not in self._skip_on_decode]).strip()


_WORD_BOUNDARY = "\u2581"  # SentencePiece's "▁"


def _read_vocab(path: Path) -> dict[str, int]:
    vocab = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise ValueError("not a JSON object of piece -> integer id")
    return vocab


class SentencePieceTokenizer:
    """Marian's tokenizer, as transformers' MarianTokenizer spells it.

    Encoding: the text is split around the special token texts (they map to their own ids);
    each other chunk loses a leading language code (`>>fr<<`, looked up as one token), is
    cut into pieces by the SOURCE SentencePiece model, and every piece is mapped to an id
    through `vocab.json` (unknown pieces -> `<unk>`: the model's ids are not SentencePiece's);
    EOS is appended. Decoding maps ids back to pieces and joins them with SentencePiece,
    special tokens left out.
    """

    def __init__(self, bundle_dir: Path, spec: TokenizerSpec, special: SpecialTokens) -> None:
        import sentencepiece  # the serving image carries it; only Marian bundles load it

        assert spec.source_model and spec.target_model and spec.vocab  # checked by the spec
        self._source = sentencepiece.SentencePieceProcessor(
            model_file=str(bundle_dir / spec.source_model)
        )
        self._target = sentencepiece.SentencePieceProcessor(
            model_file=str(bundle_dir / spec.target_model)
        )
        self._vocab = _read_vocab(bundle_dir / spec.vocab)
        target_vocab = (
            _read_vocab(bundle_dir / spec.target_vocab) if spec.target_vocab else self._vocab
        )
        self._pieces = {i: piece for piece, i in target_vocab.items()}
        # transformers joins pieces with the source model when both sides share a vocabulary
        self._joiner = self._source if spec.target_vocab is None else self._target
        self._special = special
        self._unk_id = special.unk_id
        self._unk_text = next((p for p, i in self._vocab.items() if i == special.unk_id), "")
        texts = sorted(spec.special_tokens, key=len, reverse=True)
        self._special_ids = {t: self._vocab[t] for t in texts if t in self._vocab}
        self._splitter = re.compile("(" + "|".join(map(re.escape, texts)) + ")") if texts else None
        self._skip_on_decode = {special.pad_id, special.bos_id, special.eos_id, special.unk_id}
        self._skip_on_decode |= {target_vocab[t] for t in texts if t in target_vocab}

    @property
    def vocab_size(self) -> int:
        """Ids the tokenizer can produce or read: one past the largest."""
        return max(max(self._vocab.values()), max(self._pieces)) + 1

    def _cut(self, text: str, model: Any) -> list[tuple[str, int, int]]:
        """(piece, first character, end character) of `text` cut by `model`."""
        pieces: list[tuple[str, int, int]] = []
        offset = 0
        for chunk in self._splitter.split(text) if self._splitter else [text]:
            start, offset = offset, offset + len(chunk)
            if chunk in self._special_ids:
                pieces.append((chunk, start, offset))
                continue
            if chunk.startswith(">>") and (end := chunk.find("<<")) != -1:
                pieces.append((chunk[: end + 2], start, start + end + 2))
                start, chunk = start + end + 2, chunk[end + 2 :]
            if not chunk:
                continue
            char_of_byte = [i for i, c in enumerate(chunk) for _ in c.encode("utf-8")]
            char_of_byte.append(len(chunk))
            for piece in model.encode(chunk, return_type="proto").pieces:
                first, last = char_of_byte[piece.begin], char_of_byte[piece.end]
                pieces.append((piece.piece, start + first, start + last))
        return pieces

    def _ids(self, pieces: list[tuple[str, int, int]]) -> list[int]:
        return [self._vocab.get(p, self._unk_id) for p, _, _ in pieces]

    def encode(self, text: str, *, max_tokens: int, field: str) -> EncodedText:
        pieces = self._cut(text, self._source)
        ids = [*self._ids(pieces), self._special.eos_id]
        tokens = [p if p in self._vocab else self._unk_text for p, _, _ in pieces]
        tokens.append(self.id_to_token(self._special.eos_id))
        _refuse_long(ids, max_tokens, field)
        return EncodedText(ids=tuple(ids), tokens=tuple(tokens))

    def count(self, text: str) -> int:
        return len(self._cut(text, self._source)) + 1

    def encode_plain(self, text: str) -> tuple[int, ...]:
        """Ids of `text` as the target side spells it (transformers' `text_target`)."""
        return tuple(self._ids(self._cut(text, self._target)))

    def token_span(self, text: str, start: int, end: int) -> tuple[int, int]:
        return _covering([(a, b) for _, a, b in self._cut(text, self._source)], start, end)

    @property
    def unk_id(self) -> int:
        return self._unk_id

    def starts_word(self, token_id: int) -> bool:
        return _starts_word(self.id_to_token(token_id))

    def id_to_token(self, token_id: int) -> str:
        return self._pieces.get(token_id) or f"<{token_id}>"

    def is_skipped(self, token_id: int) -> bool:
        return token_id in self._skip_on_decode

    def decode_raw(self, ids: list[int] | tuple[int, ...]) -> str:
        pieces = [self.id_to_token(i) for i in ids]
        return self._joiner.decode_pieces(pieces).replace(_WORD_BOUNDARY, " ")

    def decode(self, ids: list[int] | tuple[int, ...]) -> str:
        return self.decode_raw([i for i in ids if i not in self._skip_on_decode]).strip()


def open_tokenizer(bundle_dir: Path, manifest: BundleManifest) -> Tokenizer:
    """The tokenizer a manifest names; raises whatever its library raises on a bad file."""
    spec = manifest.tokenizer
    if spec.kind == "sentencepiece":
        return SentencePieceTokenizer(bundle_dir, spec, manifest.special_tokens)
    return TextTokenizer(
        bundle_dir / spec.file, manifest.special_tokens, post_processor=spec.post_processor
    )
