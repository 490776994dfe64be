"""A file translated in one call, for callers that translate sentences synchronously
(benchmarks, tests, batch jobs). The server runs the same steps with its own concurrency:
`open_file` and `plan_units` off the event loop, the sentences through the shared batch,
then `FilePlan.assemble` and `OpenedFile.write`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.formats.limits import FileLimits
from service.formats.plan import Sentence, plan_units
from service.formats.registry import open_file
from service.formats.restyle import Translation
from service.formats.units import FileOutput
from service.text.limit import Fits

Translator = Callable[[Sequence[Sentence]], Sequence[Translation]]


def translate_file(
    name: str,
    data: bytes,
    *,
    language: str,
    fits: Fits,
    translator: Translator,
    limits: FileLimits | None = None,
) -> FileOutput:
    """`data` (a file called `name`) with every sentence translated by `translator`."""
    opened = open_file(name, data, limits)
    plan = plan_units(opened.units, language, fits, limits)
    translations = list(translator(plan.sentences))
    return opened.write(plan.assemble(translations))
