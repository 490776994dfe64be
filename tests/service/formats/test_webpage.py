from __future__ import annotations

from service.formats.registry import open_file

from .conftest import translate

PAGE = """<!DOCTYPE html>
<html><head><title>My &amp; page</title><style>p { color: red }</style></head>
<body>
<p>Click <a href="/x" title="Go there">here <b>now</b></a> to start. Run <code>make all</code> \
first.<br/>Second line <img src="a.png" alt="A cat"> end.</p>
<p>Bad <b>nesting <i>here</b> ok</i> fine.</p>
<ul><li>One <span translate="no">Name</span> item</li></ul>
<pre>not translated</pre>
<!-- a comment -->
</body></html>"""


def test_sentences_run_across_inline_elements_and_tags_follow_words():
    out = translate("page.html", PAGE.encode()).data.decode()
    assert (
        '<p>FIRST. <code>make all</code> RUN START. TO <a href="/x" title="THERE GO"><b>NOW</b> '
        'HERE</a> CLICK<br/>LINE SECOND <img src="a.png" alt="CAT A"> END.</p>'
    ) in out
    assert "<title>PAGE &amp; MY</title>" in out
    assert '<li>ITEM <span translate="no">Name</span> ONE</li>' in out


def test_everything_outside_text_is_byte_identical():
    out = translate("page.html", PAGE.encode()).data.decode()
    for kept in (
        "<style>p { color: red }</style>",
        "<pre>not translated</pre>",
        "<!-- a comment -->",
    ):
        assert kept in out
    assert "<p>BAD <b>NESTING <i>HERE</b> OK</i> FINE.</p>" in out  # mis-nesting kept as sent


def test_a_libreoffice_page_keeps_its_markup(fixtures):
    source = (fixtures / "guide.html").read_bytes()
    opened = open_file("guide.html", source)
    assert (
        "This tool compresses files quickly and keeps their metadata. See the project page "
        "for details.1" in [unit.text for unit in opened.units]
    )
    out = translate("guide.html", source).data.decode()
    assert out.count("<") == source.decode().count("<")  # no tag lost or added
