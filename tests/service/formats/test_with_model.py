"""The format layer with the real default en->fr model (offline engine): sentences decoded
in one batch, word links from the returned attention, inline code sent as protected terms."""

from __future__ import annotations

import io
from collections.abc import Sequence

import docx
import pytest

from service.engine.offline import Seq2SeqEngine
from service.formats.align import attention_links
from service.formats.pipeline import translate_file
from service.formats.plan import Sentence
from service.formats.restyle import Translation
from tests.conftest import default_bundle


@pytest.fixture(scope="module")
def engine() -> Seq2SeqEngine:
    return Seq2SeqEngine(default_bundle("translate-en-fr"), intra_op_threads=1)


def _translate(engine: Seq2SeqEngine, name: str, data: bytes) -> bytes:
    def translator(sentences: Sequence[Sentence]) -> list[Translation]:
        out: dict[int, Translation] = {}
        for keep in dict.fromkeys(s.keep for s in sentences):  # one batch per set of terms
            group = [i for i, s in enumerate(sentences) if s.keep == keep]
            results = engine.generate_batch(
                [sentences[i].text for i in group], return_attention=True, protected_terms=keep
            )
            for index, result in zip(group, results, strict=True):
                best, source = result.best, sentences[index]
                links = attention_links(
                    source.text, best.text, best.token_ids, best.attention, engine.tokenizer
                )
                out[index] = Translation(best.text, links if source.styled else ())
        return [out[i] for i in range(len(sentences))]

    def fits(text: str) -> bool:
        return engine.tokenizer.count(text) <= engine.manifest.max_source_length

    return translate_file(name, data, language="en", fits=fits, translator=translator).data


def test_a_word_document_comes_back_in_french_with_its_bold_and_italic(engine, fixtures):
    out = _translate(engine, "guide.docx", (fixtures / "guide.docx").read_bytes())
    document = docx.Document(io.BytesIO(out))
    body = document.paragraphs[1]
    runs = [(run.text, bool(run.bold), bool(run.italic)) for run in body.runs]
    assert ("rapidement", True, False) in runs  # "quickly" was bold
    assert ("métadonnées", False, True) in runs  # "metadata" was italic
    assert "compresse" in body.text


def test_inline_code_reaches_the_markdown_translation_unchanged(engine, fixtures):
    out = _translate(engine, "guide.md", (fixtures / "guide.md").read_bytes()).decode()
    assert "`make all`" in out
    assert '```py\ncode = "not translated"\n```' in out
