"""Word links from the real en->fr model's attention (the committed default bundle)."""

from __future__ import annotations

import pytest

from service.engine.offline import Seq2SeqEngine
from service.formats.align import attention_links
from service.formats.restyle import StyleSpan, Translation, restyle
from service.formats.units import Run
from tests.conftest import default_bundle


@pytest.fixture(scope="module")
def engine() -> Seq2SeqEngine:
    return Seq2SeqEngine(default_bundle("translate-en-fr"), intra_op_threads=1)


def test_links_point_each_translated_word_at_its_source_word(engine):
    source = "A command-line tool to compress files quickly."
    best = engine.generate_batch([source], return_attention=True)[0].best
    links = attention_links(
        source, best.text, best.token_ids, best.attention, engine.tokenizer, keep="best"
    )
    by_word = {best.text[k.start : k.end]: source[k.sources[0][0] : k.sources[0][1]] for k in links}
    assert by_word["outil"] == "tool"
    assert by_word["commande"] == "command-line"
    start = source.index("compress ")
    spans = [
        StyleSpan(0, start, 0),
        StyleSpan(start, start + 8, 1),
        StyleSpan(start + 8, len(source), 0),
    ]
    runs = restyle(spans, Translation(best.text, links))
    assert Run("compresser", 1) in runs


def test_a_matrix_that_does_not_match_the_tokens_gives_no_links(engine):
    source = "Lua bindings for Pure Data"
    best = engine.generate_batch([source], return_attention=True)[0].best
    assert (
        attention_links(source, best.text, best.token_ids[:-1], best.attention, engine.tokenizer)
        == ()
    )
