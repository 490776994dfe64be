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
from service.bundle import NO_ANSWER_TOKEN, SpecialTokens, answer_source_text
from service.engine.tokenizer import TextTokenizer
from service.serving.detokenize import IncrementalDetokenizer
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


SENTENCES = [
    "It is maintained by Jane Doe. Its homepage is https://example.org/tools/.",
    'Lua bindings (v1.2), e.g. "foo"! It reads four-pane files; see x.org/wget.',
    "The packaged version is 1:2.3-4+deb12u1. Section: libdevel.",
]


def _split_tokenizer() -> Tokenizer:
    texts = [*SENTENCES, *(r["source"] for r in make_pairs(30))]
    return train_tokenizer(texts, vocab_size=300, min_frequency=1, split_punctuation=True)


def test_split_punctuation_keeps_edge_punctuation_apart_from_words() -> None:
    tok = _split_tokenizer()
    pieces = tok.encode("by Jane Doe. See (v1.2), x.org/wget/.").tokens
    assert pieces[pieces.index(".") - 1].endswith("Doe")  # "Doe." is two tokens
    assert "(" in pieces and ")" in pieces and "," in pieces
    assert not any(p.endswith(".") and len(p) > 1 for p in pieces)  # no word keeps its stop
    inner = train_tokenizer(SENTENCES, vocab_size=300, min_frequency=1, split_punctuation=False)
    assert any(p.endswith(".") and len(p) > 1 for p in inner.encode("Jane Doe.").tokens)
    # a name or URL alone is the same tokens as inside a sentence: copying it needs no stop
    sentence = tok.encode(
        "Its homepage is https://example.org/tools/. It is maintained by Jane Doe."
    )
    for span in ("https://example.org/tools/", "Jane Doe"):
        ids = tok.encode(span).ids
        assert any(sentence.ids[i : i + len(ids)] == ids for i in range(len(sentence.ids)))


def test_split_punctuation_decodes_through_the_server(tmp_path: Path) -> None:
    """The server's tokenizer and its streaming detokenizer rebuild the text exactly."""
    path = tmp_path / "tokenizer.json"
    save_tokenizer(_split_tokenizer(), path)
    server_tok = TextTokenizer(path, SpecialTokens(pad_id=0, bos_id=1, eos_id=2, unk_id=3))
    for text in SENTENCES:
        ids = server_tok.encode(text, max_tokens=200, field="text").ids
        assert server_tok.decode(ids) == text
        stream = IncrementalDetokenizer(server_tok)
        assert "".join(stream.add(i) for i in ids).strip() == text == stream.text
