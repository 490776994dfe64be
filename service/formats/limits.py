"""How much a file may hold and expand to: what keeps a hostile file from exhausting memory.

The upload itself is capped by the front end (`max_file_bytes`); these bound what a small
upload may unfold into. Refusals are InvalidArgument naming the limit, so a person can tell
a ZIP bomb from a genuinely large book.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 2**20


@dataclass(frozen=True)
class FileLimits:
    max_expanded_bytes: int = 256 * MIB  # all members of a ZIP-based file, uncompressed
    max_compression_ratio: int = 100  # uncompressed / compressed, for members over ratio_floor
    ratio_floor_bytes: int = 1 * MIB  # smaller members may compress better (repeated markup)
    max_members: int = 10_000  # files inside a ZIP-based file
    max_units: int = 200_000  # paragraphs, cells, notes, cues... of one file
    max_chars: int = 3_000_000  # characters to translate in one file (~1,000 pages)
    max_pdf_pages: int = 2_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
