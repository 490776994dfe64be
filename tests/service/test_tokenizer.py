"""The serving tokenizer over each default bundle's tokenizer.json: round trips and limits."""

from __future__ import annotations

import unicodedata

import pytest

from service.bundle import answer_source_text, read_manifest
from service.engine.tokenizer import TextTokenizer
from service.errors import InvalidArgument
from tests.conftest import default_bundle, heldout

BUNDLES = {"translate-en-fr": "translate-en-fr", "summarize-en": "summarize", "answer-en": "answer"}


def _tokenizer(name: str) -> tuple[TextTokenizer, int]:
    bundle_dir = default_bundle(name)
    manifest = read_manifest(bundle_dir)
    return TextTokenizer(bundle_dir / "tokenizer.json", manifest.special_tokens), (
        manifest.special_tokens.eos_id
    )


def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


@pytest.mark.parametrize(("name", "dataset"), BUNDLES.items())
def test_round_trip_of_held_out_text(name: str, dataset: str) -> None:
    tokenizer, eos_id = _tokenizer(name)
    for record in heldout(dataset):
        text = record.get("target") or record.get("answer") or record["question"]
        encoded = tokenizer.encode(text, max_tokens=10_000, field="text")
        assert encoded.ids[-1] == eos_id and encoded.tokens[-1] == "</s>"
        assert len(encoded.ids) == len(encoded.tokens)
        assert _normalised(tokenizer.decode(encoded.ids)) == _normalised(text)


def test_answer_separator_is_one_special_token() -> None:
    tokenizer, _ = _tokenizer("answer-en")
    record = heldout("answer")[0]
    encoded = tokenizer.encode(
        answer_source_text(record["question"], record["context"]), max_tokens=10_000, field="x"
    )
    assert encoded.tokens.count("<sep>") == 1


def test_too_many_tokens_is_refused_naming_the_field() -> None:
    tokenizer, _ = _tokenizer("translate-en-fr")
    with pytest.raises(InvalidArgument, match=r"text is \d+ tokens long; .* at most 5") as caught:
        tokenizer.encode("a fairly long sentence about packages", max_tokens=5, field="text")
    assert caught.value.field == "text"
