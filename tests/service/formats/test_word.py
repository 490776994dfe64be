from __future__ import annotations

import io

import docx
from lxml import etree

from service.formats.registry import open_file

from .conftest import members, translate, untouched_members_are_identical

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _runs(paragraph) -> list[tuple[str, bool, bool, bool]]:
    """(text, bold, italic, in a hyperlink) of a paragraph's text, hyperlinks included."""
    out = []
    for item in paragraph.iter_inner_content():
        runs = item.runs if hasattr(item, "runs") else [item]
        for run in runs:
            if run.text:
                out.append((run.text, bool(run.bold), bool(run.italic), hasattr(item, "runs")))
    return out


def test_every_place_a_reader_sees_text_is_a_unit(fixtures):
    opened = open_file("guide.docx", (fixtures / "guide.docx").read_bytes())
    kinds = {}
    for unit in opened.units:
        kinds.setdefault(unit.kind, []).append(unit.text)
    assert kinds["heading"] == ["A guide to the file compressor", "Features"]
    assert "Compress with the fastest method." in kinds["cell"]
    assert kinds["note"] == ["The project page lists every release."]
    assert kinds["header"] == ["File compressor manual"]
    assert kinds["footer"] == ["Page "]  # the page number field stays a field
    assert "A diagram of the compression pipeline" in kinds["alt"]
    assert kinds["title"] == ["A guide to the file compressor", "Compressing files"]


def test_formatting_lands_on_the_translated_words(fixtures):
    out = translate("guide.docx", (fixtures / "guide.docx").read_bytes())
    assert out.extension == ".docx"
    document = docx.Document(io.BytesIO(out.data))
    paragraphs = {p.text: p for p in document.paragraphs}
    body = next(p for text, p in paragraphs.items() if text.startswith("DETAILS."))
    assert _runs(body) == [
        ("DETAILS. FOR ", False, False, False),
        ("PAGE PROJECT", False, False, True),
        (" THE SEE ", False, False, False),
        ("METADATA.", False, True, False),
        (" THEIR KEEPS AND ", False, False, False),
        ("QUICKLY", True, False, False),
        (" FILES COMPRESSES TOOL THIS", False, False, False),
    ]
    assert document.core_properties.title == "COMPRESSOR FILE THE TO GUIDE A"
    cell = document.tables[0].cell(1, 1).paragraphs[0]
    assert _runs(cell) == [
        ("METHOD. ", False, False, False),
        ("FASTEST", False, True, False),
        (" THE WITH COMPRESS", False, False, False),
    ]
    assert document.tables[0].cell(1, 0).text == "--fast"  # an option is kept as it is


def test_untouched_parts_are_byte_identical(fixtures):
    source = (fixtures / "guide.docx").read_bytes()
    out = translate("guide.docx", source).data
    untouched_members_are_identical(
        source,
        out,
        {
            "word/document.xml",
            "word/header1.xml",
            "word/footer1.xml",
            "word/footnotes.xml",
            "docProps/core.xml",
        },
    )


def _without_text(xml: bytes) -> bytes:
    """The part with text runs, hyperlinks' runs and alt text removed: what must not change
    (python-docx's parser drops whitespace between elements, which carries no meaning)."""
    root = etree.fromstring(xml, etree.XMLParser(remove_blank_text=True))
    for paragraph in root.iter(f"{W}p"):
        for text in [t for r in paragraph.findall(f"{W}r") for t in r.findall(f"{W}t")]:
            text.getparent().remove(text)
        for child in list(paragraph):
            empty_run = child.tag == f"{W}r" and all(c.tag == f"{W}rPr" for c in child)
            if empty_run or child.tag in (f"{W}hyperlink", f"{W}proofErr"):
                paragraph.remove(child)
    for element in root.iter():
        for name in ("descr", "title"):
            element.attrib.pop(name, None)
    return etree.tostring(root, method="c14n")


def test_the_changed_parts_differ_only_in_their_text(fixtures):
    source = (fixtures / "guide.docx").read_bytes()
    out = translate("guide.docx", source).data
    before, after = members(source), members(out)
    for name in ("word/document.xml", "word/header1.xml", "word/footer1.xml", "word/footnotes.xml"):
        assert _without_text(after[name]) == _without_text(before[name]), name


def test_a_run_with_a_tab_is_split_and_its_text_joins_the_sentence():
    document = docx.Document()
    paragraph = document.add_paragraph("Press")
    run = paragraph.add_run(" the ")
    run.add_tab()
    run.add_text("red button now.")
    paragraph.runs[1].bold = True
    buffer = io.BytesIO()
    document.save(buffer)
    opened = open_file("tab.docx", buffer.getvalue())
    texts = [u.text for u in opened.units if u.kind == "paragraph"]
    assert texts == ["Press the ", "red button now."]
