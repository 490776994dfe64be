"""The server's tokenizers of imported bundles give the ids and text that transformers'
own tokenizers give, on held-out texts the tokenizers were not trained on."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from model_export.importers import family_for
from model_export.importers.checkpoint import read_checkpoint
from model_export.importers.importer import ImportResult
from service.bundle import read_manifest
from service.engine.tokenizer import Tokenizer, open_tokenizer
from service.errors import InvalidArgument
from tests.model_export.importers.factories import heldout_texts

# Whitespace runs, special-token texts inside the text, a language code, unknown characters.
TRICKY = (
    "  two  spaces   and a tab\there  ",
    "a literal </s> end and <unk> and <pad> inside",
    ">>fr<< a language code first",
    "emoji 😀, CJK 「テスト」, combining e\u0301, zero\u200bwidth",
    "x",
)
NAMES = ("marian", "bart", "mbart")


def _ours(result: ImportResult) -> Tokenizer:
    return open_tokenizer(result.bundle_dir, read_manifest(result.bundle_dir))


def _theirs(folder: Path):
    checkpoint = read_checkpoint(folder)
    family = family_for(checkpoint.model_type)
    assert family is not None
    return family.reference_tokenizer(folder)


@pytest.mark.parametrize("name", NAMES)
def test_ids_and_pieces_equal_transformers_on_held_out_text(
    name: str, imported: dict[str, ImportResult], checkpoints: dict[str, Path]
) -> None:
    ours, theirs = _ours(imported[name]), _theirs(checkpoints[name])
    texts = (*heldout_texts(), *TRICKY)
    assert len(texts) >= 300
    for text in texts:
        expected = list(theirs(text)["input_ids"])
        encoded = ours.encode(text, max_tokens=10**6, field="text")
        assert list(encoded.ids) == expected, text
        assert ours.count(text) == len(expected), text
        assert list(encoded.tokens) == theirs.convert_ids_to_tokens(expected), text
    assert ours.vocab_size == len(theirs)


@pytest.mark.parametrize("name", NAMES)
def test_decode_equals_transformers(
    name: str, imported: dict[str, ImportResult], checkpoints: dict[str, Path]
) -> None:
    """Target-side ids of held-out texts, and random id sequences (specials mixed in); the
    server strips outer whitespace from every text it returns."""
    ours, theirs = _ours(imported[name]), _theirs(checkpoints[name])
    sequences = [list(theirs(text_target=t)["input_ids"]) for t in heldout_texts()]
    rng = random.Random(3)
    sequences += [
        [rng.randrange(ours.vocab_size) for _ in range(rng.randint(1, 30))] for _ in range(100)
    ]
    for ids in sequences:
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True).strip(), ids


def test_over_long_text_is_refused_naming_the_field(imported: dict[str, ImportResult]) -> None:
    ours = _ours(imported["marian"])
    with pytest.raises(InvalidArgument, match=r"text is \d+ tokens long; .* at most 3") as caught:
        ours.encode("a sentence of several words", max_tokens=3, field="text")
    assert caught.value.field == "text"


@pytest.mark.parametrize("name", NAMES)
def test_what_constraints_use_agrees_with_transformers(
    name: str, imported: dict[str, ImportResult], checkpoints: dict[str, Path]
) -> None:
    """Plain ids are the target side's (transformers' `text_target`) without specials; a
    word's token span covers exactly the pieces that spell it."""
    ours, theirs = _ours(imported[name]), _theirs(checkpoints[name])
    for text in heldout_texts()[:60]:
        expected = theirs(text_target=text, add_special_tokens=False)["input_ids"]
        assert list(ours.encode_plain(text)) == list(expected), text
        encoded = ours.encode(text, max_tokens=10**6, field="text")
        for word in {w for w in text.split() if w.isalpha() and len(w) > 3}:
            start = text.index(word)
            first, last = ours.token_span(text, start, start + len(word))
            spelt = theirs.convert_tokens_to_string(list(encoded.tokens[first:last])).strip()
            assert word in spelt and len(spelt) < len(word) + 8, (text, word, spelt)
