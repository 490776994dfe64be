"""A document translated sentence by sentence in the shared batch, and put back together.

A text is split into sentences (service.text), each sentence is one request in the model's
shared continuous batch (at most `document_concurrency` of one call in flight, so a long
document neither overflows the queue nor starves other callers), and the translations are
put back into the text's exact structure. Each piece is tokenized once: the encoding that
told the splitter a piece fits the model is the one that is decoded. The front door has
checked the call and picked the model before it comes here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from service.engine.preparation import Source, encode_source, encode_text, fits
from service.params import DecodingParams
from service.serving.data_plane import DataPlane, Generation, ModelRef
from service.serving.models import ServedModel
from service.text.detect import Detection
from service.text.document import Document, DocumentBuilder
from service.text.markup import split_html
from service.text.plain import add_text, add_whole, lines


@dataclass(frozen=True)
class Translated:
    text: str  # the translated text, structure as sent
    alternatives: tuple[str, ...]  # the text from each sentence's 2nd, 3rd... hypothesis
    sentences: int  # pieces sent to the model
    source_language: str  # as given, or detected
    detection: Detection | None  # set when source_language was "auto"
    model: ModelRef | None  # None when the text had nothing to translate
    parts: tuple[tuple[str, Generation], ...]  # each sentence sent and its full result
    single_sentence: bool  # the text was one sentence (plain, whitespace aside)
    queue_seconds: float = 0.0  # the longest queue wait among the sentences
    compute_seconds: float = 0.0  # summed over sentences (shared with their batch-mates)


@dataclass(frozen=True)
class DocumentJob:
    """One text's translation, checked: its model, its resolved parameters."""

    model: ServedModel
    params: DecodingParams  # resolved for the model
    source_language: str  # ISO 639-1 (detected already when it was "auto")
    detection: Detection | None
    format: str  # "text" or "html"
    field: str  # the request field blamed for a problem of this text
    deadline: float | None


class Documents:
    def __init__(self, plane: DataPlane, concurrency: int) -> None:
        self.plane = plane
        self.concurrency = concurrency  # sentences of one call queued or decoding at once

    def gate(self) -> asyncio.Semaphore:
        """The concurrency limit of one call (shared by every text of a many-texts call)."""
        return asyncio.Semaphore(self.concurrency)

    async def translate(self, text: str, job: DocumentJob, gate: asyncio.Semaphore) -> Translated:
        bundle = job.model.bundle
        encoded: dict[str, Source] = {}

        def fitting(piece: str) -> bool:
            source = encoded.get(piece)
            if source is None:
                source = encoded[piece] = encode_text(bundle, piece)
            return fits(bundle, source)

        tasks: list[asyncio.Task[Generation]] = []

        def submit(sentences: list[str]) -> None:
            for sentence in sentences:
                source = encoded.get(sentence) or encode_source(bundle, sentence, job.field)
                tasks.append(asyncio.ensure_future(self._sentence(source, job, gate)))

        try:
            if job.format == "html":  # one parse over the whole page, off the event loop
                document = await asyncio.to_thread(
                    split_html, text, job.source_language, fitting, field=job.field
                )
                submit(document.sentences)
            else:
                document = await self._split_streaming(text, job.source_language, fitting, submit)
            generations = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one sentence failed or the caller left: stop the others
                task.cancel()
            raise
        single = job.format == "text" and document.sentences == [text.strip()]
        return _translated(document, generations, job, single)

    @staticmethod
    async def _split_streaming(
        text: str, source: str, fits: Callable[[str], bool], submit: Callable[[list[str]], None]
    ) -> Document:
        """Plain text split line by line on the event loop, each line's sentences submitted
        at once, so the engine translates the first paragraphs while later ones are still
        being segmented (pysbd takes ~1.6 ms per paragraph)."""
        builder = DocumentBuilder()
        if add_whole(builder, text, fits):
            submit(builder.sentences_from(0))
            return builder.build()
        for line in lines(text):
            start = len(builder)
            add_text(builder, line, source, fits)
            submit(builder.sentences_from(start))
            await asyncio.sleep(0)  # let other requests and engine callbacks run
        return builder.build()

    async def _sentence(
        self, source: Source, job: DocumentJob, gate: asyncio.Semaphore
    ) -> Generation:
        async with gate:  # the version the text began with, as the table serves it now
            chosen = job.model
            model = self.plane.models.find(chosen.name, chosen.version) or chosen
            return await self.plane.generate(model, source, job.params, job.deadline)


def _translated(
    document: Document, generations: Sequence[Generation], job: DocumentJob, single: bool
) -> Translated:
    best = [g.hypotheses[0].text for g in generations]
    n_best = max((len(g.hypotheses) for g in generations), default=1)
    alternatives = tuple(
        document.assemble([g.hypotheses[min(k, len(g.hypotheses) - 1)].text for g in generations])
        for k in range(1, n_best)
    )
    result = Translated(
        text=document.assemble(best),
        alternatives=alternatives,
        sentences=len(generations),
        source_language=job.source_language,
        detection=job.detection,
        model=generations[0].model if generations else None,
        parts=tuple(zip(document.sentences, generations, strict=True)),
        single_sentence=single,
    )
    if not generations:
        return result
    return replace(
        result,
        queue_seconds=max(g.queue_seconds for g in generations),
        compute_seconds=sum(g.compute_seconds for g in generations),
    )
