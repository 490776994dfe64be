from __future__ import annotations

from service.formats.restyle import StyleSpan, Translation, WordLink, restyle
from service.formats.units import Run


def _link(target: str, word: str, source: str, source_word: str) -> WordLink:
    start, s = target.index(word), source.index(source_word)
    return WordLink(start, start + len(word), ((s, s + len(source_word), 1.0),))


SOURCE = "the red car stops"
SPANS = [StyleSpan(0, 4, 0), StyleSpan(4, 7, 1), StyleSpan(7, 17, 0)]  # "red" is bold


def test_one_style_needs_no_alignment():
    assert restyle([StyleSpan(0, 9, 3)], Translation("la voiture")) == (Run("la voiture", 3),)


def test_a_reordered_word_keeps_its_style_and_spaces_stay_plain():
    target = "la voiture rouge s'arrête"
    links = (
        _link(target, "la", SOURCE, "the"),
        _link(target, "voiture", SOURCE, "car"),
        _link(target, "rouge", SOURCE, "red"),
        _link(target, "s'arrête", SOURCE, "stops"),
    )
    assert restyle(SPANS, Translation(target, links)) == (
        Run("la voiture ", 0),
        Run("rouge", 1),
        Run(" s'arrête", 0),
    )


def test_unlinked_words_take_their_neighbours_style_only_inside_a_styled_phrase():
    target = "la rouge très vive, voiture."
    links = (
        _link(target, "rouge", SOURCE, "red"),
        _link(target, "vive", SOURCE, "red"),
        _link(target, "voiture", SOURCE, "car"),
    )
    assert restyle(SPANS, Translation(target, links)) == (
        Run("la ", 0),
        Run("rouge très vive", 1),
        Run(", voiture.", 0),
    )


def test_without_links_the_main_style_takes_the_sentence():
    assert restyle(SPANS, Translation("la voiture rouge")) == (Run("la voiture rouge", 0),)


def test_a_verbatim_span_goes_where_its_text_is_and_nowhere_else():
    source = "run make all now"
    spans = [StyleSpan(0, 4, 0), StyleSpan(4, 12, 2), StyleSpan(12, 16, 0)]
    target = "lancez make all maintenant"
    wrong = (WordLink(0, 6, ((4, 12, 1.0),)),)  # an aligner that put the code on "lancez"
    assert restyle(spans, Translation(target, wrong), source=source, verbatim=frozenset({2})) == (
        Run("lancez ", 0),
        Run("make all", 2),
        Run(" maintenant", 0),
    )
