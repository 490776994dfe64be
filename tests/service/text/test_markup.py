from __future__ import annotations

import pytest

from service.errors import InvalidArgument
from service.text.markup import split_html

from .conftest import always, fits_words

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>A tool &amp; more</title>
<style>p { color: red }</style></head>
<body>
<!-- a comment. With a sentence. -->
<p class="intro" title="Keep &quot;this&quot; attribute">First sentence. Second one with
<b>bold</b> text.</p>
<ul>
  <li>Item one.</li>
  <li>Item &lt;two&gt; &copy; 2024</li>
</ul>
<pre>code stays. As is.</pre><p translate="no">Brand <i>Name</i></p><br/>
<span class="x notranslate">Keep me</span><img src="a.png" alt="not translated">
<script>if (a<b) { x(); }</script>
</body></html>"""


def test_markup_attributes_and_entities_are_kept():
    document = split_html(PAGE, "en", always)
    assert document.assemble(document.sentences) == PAGE.replace("&copy;", "©")
    assert document.sentences == [
        "A tool & more",
        "First sentence.",
        "Second one with",
        "bold",
        "text.",
        "Item one.",
        "Item <two> © 2024",
    ]


def test_translations_are_escaped_and_markup_untouched():
    document = split_html(PAGE, "en", always)
    out = document.assemble([f"T{i} & <{i}>" for i in range(len(document.sentences))])
    assert "<title>T0 &amp; &lt;0&gt;</title>" in out
    assert '<p class="intro" title="Keep &quot;this&quot; attribute">T1 &amp; &lt;1&gt; ' in out
    assert "<pre>code stays. As is.</pre>" in out
    assert '<p translate="no">Brand <i>Name</i></p>' in out
    assert "<script>if (a<b) { x(); }</script>" in out
    assert '<span class="x notranslate">Keep me</span>' in out


def test_long_sentences_in_text_nodes_are_cut():
    page = "<p>one two three, four five six, seven eight nine.</p>"
    document = split_html(page, "en", fits_words(3))
    assert document.sentences == ["one two three,", "four five six,", "seven eight nine."]
    assert document.assemble(document.sentences) == page


def test_wrong_nesting_is_translated_with_the_markup_as_sent():
    page = "<b>bold <i>both</b> stray</i> end. <p>unclosed"
    document = split_html(page, "en", always)
    assert document.assemble(["X"] * len(document.sentences)) == "<b>X <i>X</b> X</i> X <p>X"


@pytest.mark.parametrize(
    ("page", "where"),
    [
        ('<p>fine</p><div class="a', "line 1, column 12"),
        ("<p>fine\n<!-- never closed", "line 2, column 1"),
        ("<p>text <a href='x'", "line 1, column 9"),
    ],
)
def test_markup_that_never_ends_is_refused(page, where):
    with pytest.raises(InvalidArgument, match=where) as caught:
        split_html(page, "en", always, field="q")
    assert caught.value.field == "q"


def test_a_bare_less_than_sign_is_text():
    document = split_html("<p>a < b is true.</p>", "en", always)
    assert document.sentences == ["a < b is true."]
    assert document.assemble(["vrai"]) == "<p>vrai</p>"
