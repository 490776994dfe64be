"""model_export.tokenizer: fixed special ids, round trip, EOS and truncation."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models

from model_export.tokenizer import (
    EOS_ID,
    NO_ANSWER_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    check_special_tokens,
    decode,
    encode,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from service.bundle import NO_ANSWER_TOKEN, answer_source_text
from tests.model_export.factories import make_pairs, tiny_tokenizer


def test_special_tokens_have_fixed_ids() -> None:
    tok = tiny_tokenizer()
    assert SPECIAL_TOKENS == ("<pad>", "<s>", "</s>", "<unk>", "<sep>", "<noans>")
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("record", make_pairs(10, seed=3))
def test_round_trip(record: dict) -> None:
    tok = tiny_tokenizer()
    for text in (record["source"], record["target"]):
        ids = encode(tok, text, max_length=64)
        assert ids[-1] == EOS_ID and EOS_ID not in ids[:-1]
        assert decode(tok, ids) == unicodedata.normalize("NFKC", text)


def test_special_tokens_in_text_and_unknown_characters() -> None:
    tok = tiny_tokenizer()
    ids = encode(tok, answer_source_text("the cat?", "the dog eats"), max_length=64)
    assert ids.count(SEP_ID) == 1
    assert encode(tok, NO_ANSWER_TOKEN, max_length=8) == [NO_ANSWER_ID, EOS_ID]
    assert UNK_ID in encode(tok, "the 猫", max_length=8)


def test_truncation_keeps_eos() -> None:
    tok = tiny_tokenizer()
    text = " ".join(r["source"] for r in make_pairs(5))
    ids = encode(tok, text, max_length=6)
    assert len(ids) == 6 and ids[-1] == EOS_ID


def test_save_load_and_wrong_ids_rejected(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    save_tokenizer(tiny_tokenizer(), path)
    assert load_tokenizer(path).get_vocab() == tiny_tokenizer().get_vocab()
    other = train_tokenizer(["x y z"], vocab_size=50, min_frequency=1)
    other.add_special_tokens(["<extra>"])
    check_special_tokens(other)  # appended tokens do not move the fixed ids
    wrong = Tokenizer(models.WordLevel({"<s>": 0, "<pad>": 1}, unk_token="<s>"))
    with pytest.raises(ValueError, match="'<pad>' has id 1, expected 0"):
        check_special_tokens(wrong)
