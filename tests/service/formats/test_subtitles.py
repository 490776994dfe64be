from __future__ import annotations

import pytest
import srt

from service.errors import InvalidArgument

from .conftest import translate

CUES = (
    "\ufeff1\r\n"
    "00:00:06,500 --> 00:00:09,000\r\n"
    "About two months ago I found myself on\r\n"
    "the comment section of a video.\r\n"
    "\r\n"
    "2\r\n"
    "00:00:11,000 --> 00:00:17,000 X1:40 X2:600\r\n"
    "- Where were you?\r\n"
    "- <i>At home</i>, reading.\r\n"
    "\r\n"
    "3\r\n"
    "00:00:19,000 --> 00:00:24,000\r\n"
    "♪ ♪\r\n"
    "\r\n"
    "17\r\n"
    "00:00:25,000 --> 00:00:31,000\r\n"
    "{\\an8}It was <b>very</b> late.\r\n"
)


def test_numbering_timings_and_line_endings_are_kept_byte_for_byte():
    out = translate("film.srt", CUES.encode("utf-8")).data
    assert out.startswith(b"\xef\xbb\xbf")
    text = out.decode("utf-8-sig")
    source = list(srt.parse(CUES.lstrip("\ufeff")))
    translated = list(srt.parse(text))
    assert [(c.index, c.start, c.end, c.proprietary) for c in translated] == [
        (c.index, c.start, c.end, c.proprietary) for c in source
    ]
    # everything but the cue texts is unchanged: the same lines at the same places
    lines, source_lines = text.split("\r\n"), CUES.lstrip("\ufeff").split("\r\n")
    assert len(lines) == len(source_lines)
    for line, original in zip(lines, source_lines, strict=True):
        if "-->" in original or original.isdigit() or not original or original == "♪ ♪":
            assert line == original


def test_a_cue_is_one_unit_broken_into_as_many_lines():
    text = translate("film.srt", CUES.encode("utf-8")).data.decode("utf-8-sig")
    first = next(iter(srt.parse(text))).content
    assert first.split("\n") == [
        "VIDEO. A OF SECTION COMMENT THE ON",
        "MYSELF FOUND I AGO MONTHS TWO ABOUT",
    ]


def test_dialogue_lines_stay_lines_and_tags_follow_their_words():
    cues = list(srt.parse(translate("film.srt", CUES.encode("utf-8")).data.decode("utf-8-sig")))
    assert cues[1].content == "- YOU? WERE WHERE\n- READING. <i>HOME, AT</i>"
    assert cues[3].content == "{\\an8}LATE. <b>VERY</b> WAS IT"


def test_garbled_subtitles_are_refused_with_where():
    with pytest.raises(InvalidArgument, match="not valid SubRip"):
        translate("film.srt", b"1\n00:00:01,000 --> nonsense\nHello\n\nmore junk\n")
