from __future__ import annotations

import io

from odfdo import Document

from service.formats.registry import open_file

from .conftest import translate, untouched_members_are_identical


def _spans(paragraph) -> list[tuple[str, str]]:
    """(text, enclosing wrapper tag or "") of a paragraph's direct content."""
    out = []
    if paragraph.text:
        out.append((paragraph.text, ""))
    for child in paragraph.children:
        if child.tag in ("text:span", "text:a"):
            out.append(
                (child.text_recursive, child.tag + (child.get_attribute("text:style-name") or ""))
            )
        elif child.tag == "text:s":
            out.append((" ", ""))
        if child.tail:
            out.append((child.tail, ""))
    return out


def test_text_document_units(fixtures):
    opened = open_file("guide.odt", (fixtures / "guide.odt").read_bytes())
    kinds: dict[str, list[str]] = {}
    for unit in opened.units:
        kinds.setdefault(unit.kind, []).append(unit.text)
    assert kinds["heading"] == ["A guide to the file compressor", "Features"]
    assert kinds["note"] == ["The project page lists every release."]
    assert kinds["header"] == ["File compressor manual", "Page "]
    assert kinds["alt"] == ["Compression pipeline", "A diagram of the compression pipeline"]
    assert kinds["title"] == ["A guide to the file compressor", "Compressing files"]
    assert "Compress with the fastest method." in kinds["cell"]


def test_spans_links_and_the_footnote_stay_with_their_words(fixtures):
    source = (fixtures / "guide.odt").read_bytes()
    out = translate("guide.odt", source)
    assert out.extension == ".odt"
    document = Document(io.BytesIO(out.data))
    paragraph = document.body.get_paragraphs()[0]
    joined = "".join(text for text, _ in _spans(paragraph))
    assert joined.startswith("DETAILS. FOR PAGE PROJECT THE SEE METADATA.")
    wrapped = [(text, tag) for text, tag in _spans(paragraph) if tag]
    assert wrapped == [
        ("PAGE PROJECT", "text:aInternet_20_link"),
        ("METADATA.", "text:spanT2"),
        ("QUICKLY", "text:spanT1"),
    ]
    note = paragraph.get_element("text:note")  # the footnote is still in its paragraph
    assert (
        note.get_element("text:note-body").text_recursive.strip()
        == "RELEASE. EVERY LISTS PAGE PROJECT THE"
    )
    assert document.meta.title == "COMPRESSOR FILE THE TO GUIDE A"
    untouched_members_are_identical(source, out.data, {"content.xml", "styles.xml", "meta.xml"})


def test_presentation_slides_and_notes(fixtures):
    source = (fixtures / "deck.odp").read_bytes()
    opened = open_file("deck.odp", source)
    notes = [u.text for u in opened.units if u.kind == "note"]
    assert notes == ["Mention the new fast mode before the demo."]
    out = translate("deck.odp", source)
    assert out.extension == ".odp"
    document = Document(io.BytesIO(out.data))
    text = document.get_part("content.xml").root.text_recursive
    assert "FAST AS TWICE" in text and "DEMO. THE BEFORE" in text
    untouched_members_are_identical(source, out.data, {"content.xml", "meta.xml"})
