from __future__ import annotations

from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from .conftest import translate

PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"]).use(front_matter_plugin)


def _blocks(text: str) -> list[tuple[str, str]]:
    """(type, content) of every block token; inline content left out (it is translated)."""
    return [(t.type, "" if t.type == "inline" else t.content) for t in PARSER.parse(text)]


def _inline_shapes(text: str) -> list[list[str]]:
    return [
        [c.type for c in t.children or [] if c.type != "text"]
        for t in PARSER.parse(text)
        if t.type == "inline"
    ]


def _targets(text: str) -> list[str]:
    return [
        str(c.attrs.get("href") or c.attrs.get("src"))
        for t in PARSER.parse(text)
        if t.type == "inline"
        for c in t.children or []
        if c.type in ("link_open", "image")
    ]


def test_structure_code_front_matter_and_targets_are_kept(fixtures):
    source = (fixtures / "guide.md").read_text(encoding="utf-8")
    out = translate("guide.md", source.encode()).data.decode()
    assert _blocks(out) == _blocks(source)  # same blocks; fences, code, HTML, front matter
    assert _targets(out) == _targets(source)
    assert out.count("\n") == source.count("\n")
    text_lines = {
        line for t in PARSER.parse(source) if t.type == "inline" and t.map for line in range(*t.map)
    }
    source_lines, out_lines = source.splitlines(True), out.splitlines(True)
    untouched = [i for i in range(len(source_lines)) if i not in text_lines]
    assert len(untouched) > 15  # front matter, fences, code, HTML, blank lines, definitions
    assert [out_lines[i] for i in untouched] == [source_lines[i] for i in untouched]


def test_inline_formatting_follows_the_words(fixtures):
    source = (fixtures / "guide.md").read_text(encoding="utf-8")
    out = translate("guide.md", source.encode()).data.decode()
    assert "# HERE *HEADING* A\n" in out
    assert '[DOCS TO LINK](https://x.org/a_b "The title") A AND **TEXT BOLD** SOME' in out
    assert "NOW. `make all` USE LINE. WRAPPED A IN\n" in out  # inline code kept verbatim
    assert "STYLES. ***BOTH*** AND [REFERENCE A][ref] WITH PARAGRAPH LAST" in out
    assert "| *ONE* CELL | THREE \\| TWO |" in out
    assert [sorted(s) for s in _inline_shapes(out)] == [sorted(s) for s in _inline_shapes(source)]


def test_alt_text_is_translated_and_inline_html_content_kept(fixtures):
    source = (fixtures / "guide.md").read_text(encoding="utf-8")
    out = translate("guide.md", source.encode()).data.decode()
    assert "![TEXT ALT](img.png)" in out
    assert "<kbd>Ctrl</kbd>" in out and "<https://auto.link>" in out


def test_a_hard_wrapped_paragraph_keeps_its_line_count():
    source = "First line of a long\nparagraph that wraps\nthree times here.\n"
    out = translate("notes.md", source.encode()).data.decode()
    assert out.count("\n") == 3
    assert " ".join(out.split()) == "HERE. TIMES THREE WRAPS THAT PARAGRAPH LONG A OF LINE FIRST"
