from __future__ import annotations

import io

import docx
import pytest
from PIL import Image

from service.errors import InvalidArgument
from service.formats.registry import open_file

from .conftest import translate


def test_reading_order_headings_lists_and_styles(fixtures):
    opened = open_file("guide.pdf", (fixtures / "guide.pdf").read_bytes())
    styles = [(block.style, block.unit.text) for block in opened.blocks]
    assert ("Heading 1", "A guide to the file compressor") in styles
    assert ("Heading 2", "Features") in styles
    assert ("List Bullet", "Verifies the checksums of every file.") in styles
    texts = [text for _, text in styles]
    assert texts.index("A guide to the file compressor") < texts.index("Features")


def test_the_translation_comes_back_as_a_word_document(fixtures):
    out = translate("guide.pdf", (fixtures / "guide.pdf").read_bytes())
    assert out.extension == ".docx"
    document = docx.Document(io.BytesIO(out.data))
    bullet = next(p for p in document.paragraphs if p.text.startswith("FILE. EVERY OF"))
    assert bullet.style.name == "List Bullet"
    assert [(r.text, r.bold) for r in bullet.runs] == [
        ("FILE. EVERY OF ", None),
        ("CHECKSUMS", True),
        (" THE VERIFIES", None),
    ]
    assert document.core_properties.title == "COMPRESSOR FILE THE TO GUIDE A"


def test_a_scanned_pdf_without_text_is_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(buffer, format="PDF")
    with pytest.raises(InvalidArgument, match=r"no text to translate.*OCR"):
        open_file("scan.pdf", buffer.getvalue())
