from __future__ import annotations

import io

import pptx

from service.formats.registry import open_file

from .conftest import translate, untouched_members_are_identical


def test_slides_tables_notes_alt_text_and_title_are_units(fixtures):
    opened = open_file("deck.pptx", (fixtures / "deck.pptx").read_bytes())
    texts = {unit.kind: [] for unit in opened.units}
    for unit in opened.units:
        texts[unit.kind].append(unit.text)
    assert "The compressor is twice as fast on large files." in texts["slide"]
    assert "Use the fastest method." in texts["slide"]  # a table cell
    assert texts["note"] == ["Mention the new fast mode before the demo."]
    assert texts["alt"] == ["A chart of the compression speed"]
    assert "Release notes of the file compressor" in texts["title"]


def test_bold_links_and_notes_follow_their_words(fixtures):
    out = translate("deck.pptx", (fixtures / "deck.pptx").read_bytes())
    deck = pptx.Presentation(io.BytesIO(out.data))
    body = deck.slides[1].placeholders[1].text_frame.paragraphs
    assert [(r.text, r.font.bold) for r in body[0].runs] == [
        ("FILES. LARGE ON ", None),
        ("FAST AS TWICE", True),
        (" IS COMPRESSOR THE", None),
    ]
    links = [(r.text, r.hyperlink.address) for r in body[1].runs]
    assert ("PAGE RELEASE", "https://example.org/releases") in links
    notes = deck.slides[1].notes_slide.notes_text_frame.paragraphs[0]
    assert [(r.text, r.font.bold) for r in notes.runs] == [
        ("DEMO. THE BEFORE ", None),
        ("MODE FAST NEW", True),
        (" THE MENTION", None),
    ]
    picture = next(s for s in deck.slides[2].shapes if s.shape_type == 13)
    assert picture._element.nvPicPr.cNvPr.get("descr") == "SPEED COMPRESSION THE OF CHART A"
    assert deck.core_properties.title == "COMPRESSOR FILE THE OF NOTES RELEASE"


def test_only_slides_notes_and_metadata_change(fixtures):
    source = (fixtures / "deck.pptx").read_bytes()
    out = translate("deck.pptx", source).data
    untouched_members_are_identical(
        source,
        out,
        {
            "ppt/slides/slide1.xml",
            "ppt/slides/slide2.xml",
            "ppt/slides/slide3.xml",
            "ppt/notesSlides/notesSlide1.xml",
            "docProps/core.xml",
        },
    )
