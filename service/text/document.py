"""A document as pieces: the sentences to translate and everything kept exactly as sent.

`Document.assemble(translations)` writes the kept pieces back byte for byte and each
translated piece in its sentence's place, so paragraph breaks, line breaks, list markers,
indentation and the spaces between sentences survive translation unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Piece:
    text: str  # kept: the exact source text; translated: the text sent to the model
    translate: bool  # True: a sentence (or part of one) for the model


@dataclass(frozen=True)
class Document:
    pieces: tuple[Piece, ...]
    # How a translation is written back (HTML escapes it); kept pieces are never changed.
    write: Callable[[str], str] = field(default=lambda text: text)

    @property
    def sentences(self) -> list[str]:
        """The texts to translate, in document order."""
        return [p.text for p in self.pieces if p.translate]

    def assemble(self, translations: Sequence[str]) -> str:
        """The document with each sentence replaced by its translation, in order."""
        sentences = sum(p.translate for p in self.pieces)
        if len(translations) != sentences:
            raise ValueError(f"{len(translations)} translations for {sentences} sentences")
        out: list[str] = []
        replacements = iter(translations)
        for piece in self.pieces:
            out.append(self.write(next(replacements)) if piece.translate else piece.text)
        return "".join(out)


class DocumentBuilder:
    """Collects pieces; adjacent kept pieces merge so the piece list stays short."""

    def __init__(self) -> None:
        self._pieces: list[Piece] = []

    def keep(self, text: str) -> None:
        if not text:
            return
        if self._pieces and not self._pieces[-1].translate:
            self._pieces[-1] = Piece(self._pieces[-1].text + text, translate=False)
        else:
            self._pieces.append(Piece(text, translate=False))

    def translate(self, text: str) -> None:
        self._pieces.append(Piece(text, translate=True))

    def __len__(self) -> int:
        return len(self._pieces)

    def sentences_from(self, start: int) -> list[str]:
        """The texts to translate added since the builder held `start` pieces (a kept piece
        only ever merges into a kept one, so earlier sentences keep their places)."""
        return [p.text for p in self._pieces[start:] if p.translate]

    def build(self, write: Callable[[str], str] | None = None) -> Document:
        if write is None:
            return Document(tuple(self._pieces))
        return Document(tuple(self._pieces), write)
