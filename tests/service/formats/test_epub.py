from __future__ import annotations

from service.formats.registry import open_file

from .conftest import members, translate, untouched_members_are_identical


def test_chapters_navigation_and_title_are_translated(fixtures):
    source = (fixtures / "guide.epub").read_bytes()
    opened = open_file("guide.epub", source)
    texts = [unit.text for unit in opened.units]
    assert texts.count("A guide to the file compressor") == 4  # chapter, nav, NCX, OPF title
    assert "OEBPS/images/image0001.png" not in texts  # an alt text that is a file name
    out = translate("guide.epub", source).data
    untouched_members_are_identical(
        source,
        out,
        {
            "OEBPS/sections/section0001.xhtml",
            "OEBPS/toc.xhtml",
            "OEBPS/toc.ncx",
            "OEBPS/content.opf",
        },
    )
    chapter = members(out)["OEBPS/sections/section0001.xhtml"].decode()
    assert '<span class="span2">QUICKLY</span>' in chapter
    assert (
        '<a href="https://example.org/compressor"><span class="span4">PAGE PROJECT</span></a>'
        in chapter
    )
    assert members(out)["mimetype"] == b"application/epub+zip"
    opf = members(out)["OEBPS/content.opf"].decode()
    assert "<dc:title>COMPRESSOR FILE THE TO GUIDE A</dc:title>" in opf
