"""The incremental detokenizer spells exactly what a full decode spells, at every token."""

from __future__ import annotations

import pytest

from service.bundle import read_manifest
from service.engine.tokenizer import TextTokenizer
from service.serving.detokenize import IncrementalDetokenizer
from tests.conftest import default_bundle, heldout


@pytest.mark.parametrize("model", ["translate-en-fr", "translate-en-de", "translate-en-it"])
def test_every_prefix_matches_the_full_decode(model: str) -> None:
    bundle = default_bundle(model)
    tokenizer = TextTokenizer(bundle / "tokenizer.json", read_manifest(bundle).special_tokens)
    for record in heldout(model)[:40]:
        ids = tokenizer.encode(record["target"], max_tokens=10**6, field="text").ids
        stream = IncrementalDetokenizer(tokenizer)
        pieces = []
        for i, token_id in enumerate(ids):
            pieces.append(stream.add(token_id))
            assert stream.text == tokenizer.decode(ids[: i + 1])
        assert "".join(pieces).strip() == tokenizer.decode(ids)
