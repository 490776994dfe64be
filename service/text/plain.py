"""Plain text -> Document: lines, list markers and sentences, with the structure kept.

Rules (docs/documents.md):
- Translate sends a one-line text that fits the model whole (`whole_line`); the rules below
  are for documents: several lines, or a line over the model's limit.
- Every line break is kept where it is (`\\n`, `\\r\\n`, `\\r` and Unicode line separators),
  so blank lines between paragraphs and the lines of a list survive. A sentence never spans a
  line break: each line is segmented on its own (text hard-wrapped inside a sentence is
  translated line by line; send unwrapped paragraphs for the best translations).
- A line's indentation, its list marker (`-`, `*`, `+`, `•`, `–`, `—`, `1.`, `2)`, `a)`,
  `(3)`) with the space after it, and its trailing whitespace are kept untranslated.
- The spaces between two sentences of a line are kept as they were.
- A sentence with no letter in it (`----`, `42`, `=>`) is kept untranslated.
- A sentence over the model's source limit is cut into pieces that fit (`limit.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from service.text.document import Document, DocumentBuilder
from service.text.limit import Fits, split_to_fit
from service.text.segment import segmenter_for

_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")
_LINE = re.compile(r"[^\r\n\u2028\u2029\x85]*(?:\r\n|[\r\n\u2028\u2029\x85])?")
_MARKER = re.compile(r"\s*(?:[-*+•‣◦·–—]|\d{1,3}[.)]|[a-z]\)|\(\w{1,3}\))(?=\s)\s*|\s*")


def has_letter(text: str) -> bool:
    return any(c.isalpha() for c in text)


def split_text(text: str, language: str, fits: Fits, *, whole_line: bool = False) -> Document:
    """`text` as kept pieces and sentences to translate; `fits` tells a piece's size is ok.

    With `whole_line`, a text of one line that fits is one piece (its surrounding whitespace
    kept): Translate sends such a text whole, as TranslateStream and the offline engine do
    (the default models learned from whole paragraphs); documents of several lines, and
    lines over the limit, are split into sentences.
    """
    builder = DocumentBuilder()
    if not (whole_line and add_whole(builder, text, fits)):
        for line in lines(text):
            add_text(builder, line, language, fits)
    return builder.build()


def add_whole(builder: DocumentBuilder, text: str, fits: Fits) -> bool:
    """Add `text` as one piece if it is one line that fits; False (nothing added) if not."""
    stripped = text.strip()
    if not stripped or _BREAK.search(stripped) or not fits(stripped):
        return False
    start = text.index(stripped)
    builder.keep(text[:start])
    builder.translate(stripped)
    builder.keep(text[start + len(stripped) :])
    return True


def lines(text: str) -> Iterator[str]:
    """The lines of `text`, each with its own line break (a document is split line by line,
    so that translating can start before the last line is segmented)."""
    for match in _LINE.finditer(text):
        if match.group():
            yield match.group()


def add_text(
    builder: DocumentBuilder,
    text: str,
    language: str,
    fits: Fits,
    decode: Callable[[str], str] = str,
) -> None:
    """Append `text`'s pieces to `builder`. HTML adds each raw text node this way, with
    `decode` turning a sentence's character references into the text the model reads;
    kept pieces stay raw."""
    segmenter = segmenter_for(language)
    for line in lines(text):
        body = line.rstrip("\r\n\u2028\u2029\x85")
        prefix = _MARKER.match(body)
        start = prefix.end() if prefix else 0
        builder.keep(body[:start])
        content = body[start:]
        position = 0
        for span in segmenter.sentences(content):
            builder.keep(content[position : span.start])
            sentence = content[span.start : span.end]
            if not has_letter(decode(sentence)):
                builder.keep(sentence)
            else:
                inner = 0
                for piece in split_to_fit(sentence, lambda s: fits(decode(s))):
                    builder.keep(sentence[inner : piece.start])
                    builder.translate(decode(sentence[piece.start : piece.end]))
                    inner = piece.end
                builder.keep(sentence[inner:])
            position = span.end
        builder.keep(content[position:])
        builder.keep(line[len(body) :])


def reassemble(document: Document) -> str:
    """The document with every sentence unchanged (equals the input: a test's invariant)."""
    return document.assemble(document.sentences)
