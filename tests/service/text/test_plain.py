from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.text.plain import reassemble, split_text

from .conftest import always, fits_words

DOCUMENT = (
    "Lua bindings for Pure Data. It adds a scripting layer.\n"
    "\n"
    "Features:\n"
    " * reads files.  Writes them too!\n"
    " - second item\n"
    "   1. nested numbered item\n"
    "   2) another one\n"
    "(a) lettered item\n"
    "\n"
    "\n"
    "\tIndented line with trailing spaces.   \r\n"
    "----\r\n"
    "Last line without a newline"
)


def test_structure_is_kept_byte_for_byte():
    document = split_text(DOCUMENT, "en", always)
    assert reassemble(document) == DOCUMENT
    assert document.sentences == [
        "Lua bindings for Pure Data.",
        "It adds a scripting layer.",
        "Features:",
        "reads files.",
        "Writes them too!",
        "second item",
        "nested numbered item",
        "another one",
        "lettered item",
        "Indented line with trailing spaces.",
        "Last line without a newline",
    ]


def test_translations_replace_only_the_sentences():
    document = split_text(DOCUMENT, "en", always)
    out = document.assemble([f"<{i}>" for i in range(len(document.sentences))])
    assert out.splitlines(keepends=True)[:4] == ["<0> <1>\n", "\n", "<2>\n", " * <3>  <4>\n"]
    assert out.endswith("\t<9>   \r\n----\r\n<10>")


def test_assemble_refuses_a_wrong_count():
    document = split_text("One. Two.", "en", always)
    with pytest.raises(ValueError, match="1 translations for 2 sentences"):
        document.assemble(["only one"])


def test_a_sentence_over_the_limit_is_cut_at_clauses_not_dropped():
    sentence = "This tool reads, writes and converts files, keeps metadata, and runs fast."
    document = split_text(sentence, "en", fits_words(5))
    assert reassemble(document) == sentence
    assert document.sentences == [
        "This tool reads,",
        "writes and converts files,",
        "keeps metadata, and runs fast.",
    ]


def test_wordless_runs_are_cut_between_characters():
    url = "https://example.org/" + "a" * 60
    document = split_text(f"See {url} now.", "en", lambda s: len(s) <= 25)
    assert reassemble(document) == f"See {url} now."
    assert all(len(s) <= 25 for s in document.sentences)
    assert "".join(document.sentences).replace(" ", "") == f"See{url}now."
    assert len(document.sentences) >= 4


@given(st.text(alphabet=st.sampled_from("ab. \n\r\t*-1)?!É"), max_size=80))
def test_any_text_reassembles_exactly(text):
    assert reassemble(split_text(text, "fr", fits_words(3))) == text


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "----\n42\n", "=> ..."])
def test_text_without_letters_has_nothing_to_translate(text):
    document = split_text(text, "en", always)
    assert document.sentences == []
    assert reassemble(document) == text


def test_one_line_that_fits_is_one_piece_with_whole_line():
    text = "  Lua bindings. A tool to compress files.  "
    document = split_text(text, "en", always, whole_line=True)
    assert document.sentences == ["Lua bindings. A tool to compress files."]
    assert reassemble(document) == text
    too_long = split_text(text, "en", fits_words(3), whole_line=True)
    assert too_long.sentences == ["Lua bindings.", "A tool to", "compress files."]
    lines = split_text("One. Two.\nThree.", "en", always, whole_line=True)
    assert lines.sentences == ["One.", "Two.", "Three."]
