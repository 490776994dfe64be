from __future__ import annotations

from .conftest import translate


def test_lines_markers_and_the_byte_order_mark_are_kept():
    source = "\ufeffFirst line here.\r\n\r\n * a list item\r\n----\r\n"
    out = translate("notes.txt", source.encode("utf-8")).data
    assert out == "\ufeffHERE. LINE FIRST\r\n\r\n * ITEM LIST A\r\n----\r\n".encode()


def test_utf16_text_comes_back_in_utf16():
    source = "Hello world.\n".encode("utf-16")
    out = translate("notes.txt", source)
    assert out.data == "WORLD. HELLO\n".encode("utf-16")
    assert out.media_type == "text/plain; charset=utf-16"
