"""A shared-vocabulary BPE tokenizer (Hugging Face `tokenizers`) fitted on training text only.

The saved tokenizer.json has no post-processor: callers append EOS themselves (the bundle
manifest names eos_id) so that the service and the trainer add exactly one EOS.

`split_punctuation` keeps punctuation at the edges of a word apart from it ("Doe." ->
"▁Doe" "."; "(v1.2)," -> "▁" "(" "v1.2" ")" ","), so a name or URL copied out of a sentence
is the same tokens as the name alone and does not carry the sentence's full stop.
Punctuation inside a word ("x.org/wget", "four-pane", "e.g") stays in it, so words are not
fragmented. Spaces are encoded by the Metaspace marker alone, so decoding rebuilds the text
exactly as without the split.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from service.bundle import ANSWER_SEPARATOR_TOKEN, NO_ANSWER_TOKEN

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
# Order fixes the ids: <pad>=0, <s>=1, </s>=2, <unk>=3, <sep>=4, <noans>=5.
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, ANSWER_SEPARATOR_TOKEN, NO_ANSWER_TOKEN)
PAD_ID, BOS_ID, EOS_ID, UNK_ID, SEP_ID, NO_ANSWER_ID = range(len(SPECIAL_TOKENS))
METASPACE = "▁"
# One punctuation character at a word's edge: right after the space marker (or the start of
# the piece), or in the run of punctuation that ends the piece. Applied after Metaspace, whose
# pieces are "▁word..." each.
EDGE_PUNCTUATION = rf"(?<={METASPACE})\p{{P}}|^\p{{P}}|\p{{P}}(?=\p{{P}}*(?:{METASPACE}|$))"


def pre_tokenizer(*, split_punctuation: bool) -> pre_tokenizers.PreTokenizer:
    """Metaspace (every word starts with "▁"), then, if asked, edge punctuation isolated."""
    metaspace = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    if not split_punctuation:
        return metaspace
    edges = pre_tokenizers.Split(Regex(EDGE_PUNCTUATION), behavior="isolated")
    return pre_tokenizers.Sequence([metaspace, edges])


def train_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int,
    min_frequency: int = 2,
    split_punctuation: bool = False,
) -> Tokenizer:
    """Fit BPE on `texts` (training split only: source and target sides together)."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizer(split_punctuation=split_punctuation)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
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
