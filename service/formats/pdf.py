"""PDF: text extracted in reading order with pdfminer.six, returned as a Word document.

Why Word (.docx) and not a PDF: a PDF places every line at fixed coordinates, and a
translation is rarely the same length (French runs ~15-20% longer than English), so
translated text cannot go back into the same boxes without overflowing or shrinking. A
.docx reflows: the reader gets the translated text with its paragraphs, headings, lists,
bold and italic, opens it in Word, LibreOffice or any online office suite, edits it, and
prints it to PDF if they want. No font has to be shipped (a PDF writer would need one that
covers every target language), and python-docx is already a dependency for .docx files.

Why pdfminer.six: pure Python, maintained, and its layout analysis orders text boxes in
reading order (columns before rows) and keeps each character's font, so bold and italic
come through. Lines become paragraphs by: a change of font size, a vertical gap wider
than a line, a bullet at the start of a line, or a short line ending a sentence;
hyphenated line ends are joined. A line 15% larger than the body text is a heading (40%
larger: a first-level one).

Refused: a PDF that needs a password, a damaged one, one with more than `max_pdf_pages`
pages, and one without any text (a scan): it needs OCR first, which this server does not do.
"""

from __future__ import annotations

import io
import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import docx
from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LAParams, LTAnno, LTChar, LTPage, LTTextContainer, LTTextLine
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser, PDFSyntaxError
from pdfminer.psparser import PSException
from pdfminer.utils import decode_text

from service.errors import InvalidArgument
from service.formats.limits import FileLimits
from service.formats.units import FileOutput, Run, StyledText, Unit, check_count, merge_runs
from service.text.plain import has_letter

_BULLET = re.compile(r"^\s*(?:[•◦▪‣●○■□\ue000-\uf8ff]\s*|[-–—*]\s+)")
_SENTENCE_END = re.compile(r"[.!?:;]\W*$")
_STYLES = ((False, False), (True, False), (False, True), (True, True))  # (bold, italic)


@dataclass(frozen=True)
class _Line:
    runs: tuple[Run, ...]  # style: index into _STYLES
    size: float  # the line's most common font size
    top: float  # page coordinates (PDF's y grows upwards)
    bottom: float
    right: float
    box: int  # which text box of the page the line is in
    box_left: float  # the box's edges
    box_right: float


@dataclass(frozen=True)
class _Block:
    unit: Unit
    page: int
    style: str  # the Word paragraph style: Normal, Heading 1, Heading 2, List Bullet


@dataclass(frozen=True)
class PdfFile:
    title: str
    blocks: tuple[_Block, ...]

    @property
    def units(self) -> tuple[Unit, ...]:
        return tuple(block.unit for block in self.blocks) + (
            (Unit((Run(self.title, 0),), kind="title"),) if has_letter(self.title) else ()
        )

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        document = docx.Document()
        page = 0
        for block, runs in zip(self.blocks, translations, strict=False):
            if block.page != page and page:
                document.add_page_break()
            page = block.page
            paragraph = document.add_paragraph(style=block.style)
            for run in runs:
                bold, italic = _STYLES[run.style]
                written = paragraph.add_run(run.text)
                written.bold = bold or None
                written.italic = italic or None
        if len(translations) > len(self.blocks):
            document.core_properties.title = "".join(r.text for r in translations[-1])
        out = io.BytesIO()
        document.save(out)
        return FileOutput(
            out.getvalue(),
            ".docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )


def open_pdf(data: bytes, limits: FileLimits) -> PdfFile:
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)))
        pages = list(PDFPage.create_pages(document))
    except (PDFPasswordIncorrect, PDFEncryptionError) as error:
        raise _invalid("the PDF is protected by a password; send it without one") from error
    except (PDFSyntaxError, PSException, ValueError, KeyError, TypeError) as error:
        raise _invalid(f"the PDF is damaged and cannot be read ({error})") from error
    if len(pages) > limits.max_pdf_pages:
        raise _invalid(f"the PDF has {len(pages)} pages; the limit is {limits.max_pdf_pages}")
    lines_by_page = [list(_lines(layout)) for layout in _layouts(pages)]
    sizes = [line.size for lines in lines_by_page for line in lines]
    if not sizes or not any(has_letter(_text(line.runs)) for p in lines_by_page for line in p):
        raise _invalid(
            "the PDF has no text to translate: it is probably scanned images; run text "
            "recognition (OCR) on it first"
        )
    body = statistics.median(sizes)
    blocks = [
        block
        for number, lines in enumerate(lines_by_page, start=1)
        for block in _blocks(lines, number, body)
    ]
    return PdfFile(_title(document), tuple(blocks))


def _layouts(pages: Sequence[PDFPage]) -> Iterator[LTPage]:
    manager = PDFResourceManager()
    device = PDFPageAggregator(manager, laparams=LAParams())
    interpreter = PDFPageInterpreter(manager, device)
    for page in pages:
        interpreter.process_page(page)
        yield device.get_result()


def _lines(layout: LTPage) -> Iterator[_Line]:
    for number, box in enumerate(layout):
        if not isinstance(box, LTTextContainer):
            continue
        for line in box:
            if not isinstance(line, LTTextLine):
                continue
            runs: list[Run] = []
            sizes: list[float] = []
            style = 0
            for item in line:
                if isinstance(item, LTChar):
                    style = _style_of(item.fontname)
                    sizes.append(round(item.size, 1))
                if isinstance(item, LTChar | LTAnno):
                    runs.append(Run(item.get_text().replace("\n", ""), style))
            if sizes:
                yield _Line(
                    merge_runs(runs),
                    statistics.mode(sizes),
                    line.y1,
                    line.y0,
                    line.x1,
                    number,
                    box.x0,
                    box.x1,
                )


def _style_of(font: str) -> int:
    name = font.split("+")[-1].lower()
    bold = any(mark in name for mark in ("bold", "black", "heavy", "semibold", "demi"))
    italic = any(mark in name for mark in ("italic", "oblique"))
    return _STYLES.index((bold, italic))


def _blocks(lines: Sequence[_Line], page: int, body: float) -> Iterator[_Block]:
    current: list[_Line] = []
    for line in lines:
        if current and _starts_paragraph(current[-1], line):
            yield from _block(current, page, body)
            current = []
        current.append(line)
    if current:
        yield from _block(current, page, body)


def _starts_paragraph(previous: _Line, line: _Line) -> bool:
    height = max(previous.top - previous.bottom, 1.0)
    gap = previous.bottom - line.top
    width = previous.box_right - previous.box_left
    short = previous.right < previous.box_left + 0.7 * width  # a paragraph's last line
    return (
        line.box != previous.box
        or abs(line.size - previous.size) > 0.1 * previous.size
        or gap > height
        or bool(_BULLET.match(_text(line.runs)))
        or short
        or (
            previous.right < previous.box_right - 0.15 * width
            and bool(_SENTENCE_END.search(_text(previous.runs)))
        )
    )


def _block(lines: Sequence[_Line], page: int, body: float) -> Iterator[_Block]:
    runs: list[Run] = []
    for index, line in enumerate(lines):
        line_runs = list(line.runs)
        if index and runs:
            last = runs[-1]
            text = last.text.rstrip()
            if re.search(r"\w-$", text) and _text(line.runs)[:1].islower():
                runs[-1] = Run(text[:-1], last.style)  # a hyphenated line end: join the word
            else:
                runs[-1] = Run(text, last.style)
                runs.append(Run(" ", last.style))
        runs.extend(line_runs)
    text = _text(runs)
    bullet = _BULLET.match(text)
    style = "Normal"
    if bullet:
        runs = _drop_prefix(runs, bullet.end())
        style = "List Bullet"
    elif lines[0].size >= 1.4 * body:
        style = "Heading 1"
    elif lines[0].size >= 1.15 * body:
        style = "Heading 2"
    unit = Unit(merge_runs(runs), kind="heading" if style.startswith("Heading") else "paragraph")
    if has_letter(unit.text):
        yield _Block(unit, page, style)


def _drop_prefix(runs: Sequence[Run], count: int) -> list[Run]:
    kept: list[Run] = []
    for run in runs:
        if count >= len(run.text):
            count -= len(run.text)
            continue
        kept.append(Run(run.text[count:], run.style))
        count = 0
    return kept


def _text(runs: Sequence[Run]) -> str:
    return "".join(run.text for run in runs)


def _title(document: PDFDocument) -> str:
    for info in document.info:
        value = info.get("Title")
        if isinstance(value, bytes):
            return decode_text(value).strip()
        if isinstance(value, str):
            return value.strip()
    return ""


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message, field="file")
