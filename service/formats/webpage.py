"""Web pages (.html, .htm): `hypertext.html_units` over the whole page.

Text nodes, the `<title>`, and `alt`/`title`/`aria-label` values are translated with inline
formatting kept; every other byte is written back as it came.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.formats.hypertext import HtmlUnits, html_units
from service.formats.limits import FileLimits
from service.formats.sniff import TextFile, read_text
from service.formats.units import FileOutput, StyledText, Unit, check_count


@dataclass(frozen=True)
class WebPage:
    source: TextFile
    page: HtmlUnits

    @property
    def units(self) -> tuple[Unit, ...]:
        return self.page.units

    def write(self, translations: Sequence[StyledText]) -> FileOutput:
        check_count(translations, self.units)
        text = self.page.write(translations)
        return FileOutput(self.source.encode(text), ".html", self.source.media_type("text/html"))


def open_web_page(data: bytes, limits: FileLimits) -> WebPage:
    source = read_text(data, "web page")
    return WebPage(source, html_units(source.text, "web page"))
