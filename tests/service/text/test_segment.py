from __future__ import annotations

import pytest

from service.text.segment import SentenceSegmenter, segmenter_for


@pytest.mark.parametrize("language", ["en", "fr", "de", "it"])
def test_gold_paragraphs_split_as_annotated(gold, language):
    """The chosen segmenter on held-out paragraphs: nearly every gold boundary, few extra."""
    segmenter = segmenter_for(language)
    rows = [r for r in gold if r["lang"] == language]
    wrong = 0
    boundaries = 0
    for row in rows:
        found = {s.start for s in segmenter.sentences(row["text"]) if s.start > 0}
        wrong += len(found ^ set(row["starts"]))
        boundaries += len(row["starts"])
    assert boundaries > 50
    assert wrong <= 3, f"{wrong} boundary errors in {language}"


def test_spans_hold_no_surrounding_space_and_cover_the_text():
    text = "  One sentence here.   Another one!  And a third?  "
    spans = SentenceSegmenter("en").sentences(text)
    assert [text[s.start : s.end] for s in spans] == [
        "One sentence here.",
        "Another one!",
        "And a third?",
    ]


@pytest.mark.parametrize("text", ["e.g. this is one sentence.", "Version 1.2.3 is out."])
def test_abbreviations_and_versions_do_not_split(text):
    assert len(SentenceSegmenter("en").sentences(text)) == 1


def test_unknown_language_falls_back_to_english_rules():
    segmenter = SentenceSegmenter("xx")
    assert segmenter.language == "en"
    assert len(segmenter.sentences("One. Two.")) == 2


def test_blank_text_has_no_sentences():
    assert SentenceSegmenter("fr").sentences(" \n\t ") == []
