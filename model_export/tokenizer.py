"""A shared-vocabulary BPE tokenizer (Hugging Face `tokenizers`) fitted on training text only.

The saved tokenizer.json has no post-processor: callers append EOS themselves (the bundle
manifest names eos_id) so that the service and the trainer add exactly one EOS.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from service.bundle import ANSWER_SEPARATOR_TOKEN, NO_ANSWER_TOKEN

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
# Order fixes the ids: <pad>=0, <s>=1, </s>=2, <unk>=3, <sep>=4, <noans>=5.
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, ANSWER_SEPARATOR_TOKEN, NO_ANSWER_TOKEN)
PAD_ID, BOS_ID, EOS_ID, UNK_ID, SEP_ID, NO_ANSWER_ID = range(len(SPECIAL_TOKENS))


def train_tokenizer(texts: Iterable[str], *, vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Fit BPE on `texts` (training split only: source and target sides together)."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    check_special_tokens(tok)
    return tok


def check_special_tokens(tok: Tokenizer) -> None:
    """Raise ValueError unless every special token has its fixed id."""
    for expected, token in enumerate(SPECIAL_TOKENS):
        got = tok.token_to_id(token)
        if got != expected:
            raise ValueError(f"special token {token!r} has id {got}, expected {expected}")


def save_tokenizer(tok: Tokenizer, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))


def load_tokenizer(path: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    check_special_tokens(tok)
    return tok


def encode(tok: Tokenizer, text: str, *, max_length: int) -> list[int]:
    """Token ids of `text` with EOS appended, truncated so the result has <= max_length ids."""
    ids = tok.encode(text, add_special_tokens=False).ids[: max_length - 1]
    return [*ids, EOS_ID]


def encode_batch(tok: Tokenizer, texts: list[str], *, max_length: int) -> list[list[int]]:
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    return [[*e.ids[: max_length - 1], EOS_ID] for e in encodings]


def decode(tok: Tokenizer, ids: Iterable[int]) -> str:
    """Text of `ids` up to (not including) the first EOS; special tokens are dropped."""
    out: list[int] = []
    for i in ids:
        if i == EOS_ID:
            break
        out.append(int(i))
    return tok.decode(out, skip_special_tokens=True)
