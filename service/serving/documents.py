"""Documents, many texts and language detection over the data plane, for every front end.

A text is split into sentences (service.text), each sentence is one request in the model's
shared continuous batch (at most `document_concurrency` of one call in flight, so a long
document neither overflows the queue nor starves other callers), and the translations are
put back into the text's exact structure. `source_language: auto` detects the language among
those the loaded translate models speak. Errors of one text in a many-texts call are
returned in its place; the other texts are answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from seq2seq_client.tasks import TASKS
from service.errors import InvalidArgument, NotFound, ServiceError
from service.params import DecodingParams
from service.serving.data_plane import DataPlane, Generation, ModelChoice, ModelRef, require_text
from service.serving.long_input import InputUsed, fit_long_input
from service.text.detect import Detection, LanguageDetector
from service.text.document import Document, DocumentBuilder
from service.text.markup import split_html
from service.text.plain import add_text, add_whole, lines

FORMATS = ("text", "html")
AUTO = "auto"


@dataclass(frozen=True)
class DocumentLimits:
    max_document_chars: int = 100_000  # longest text of a translate call, in characters
    max_texts: int = 128  # most texts in one call
    document_concurrency: int = 256  # sentences of one call queued or decoding at once


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
class TranslateJob:
    source_language: str  # ISO 639-1, or "auto"
    target_language: str
    format: str = "text"  # "text" or "html"
    choice: ModelChoice = field(default_factory=ModelChoice)
    params: DecodingParams = field(default_factory=DecodingParams)
    deadline: float | None = None


class Documents:
    def __init__(self, plane: DataPlane, limits: DocumentLimits) -> None:
        self.plane = plane
        self.limits = limits
        self._detectors: dict[frozenset[str], LanguageDetector] = {}

    # --- languages ---------------------------------------------------------------------
    def language_pairs(self) -> dict[str, list[str]]:
        """source language -> target languages, over the loaded translate models."""
        pairs: dict[str, set[str]] = {}
        for model in self.plane.models.all():
            languages = model.bundle.manifest.languages
            if model.bundle.manifest.task == "translate" and languages is not None:
                pairs.setdefault(languages.source, set()).add(languages.target)
        return {source: sorted(targets) for source, targets in sorted(pairs.items())}

    def languages(self) -> list[str]:
        """Every language a loaded translate model reads or writes."""
        pairs = self.language_pairs()
        return sorted(set(pairs) | {t for targets in pairs.values() for t in targets})

    def detect(self, text: str, field: str = "text", top: int = 3) -> list[Detection]:
        """The most likely languages of `text` among `languages()`, best first."""
        require_text(text, field, self.limits.max_document_chars)
        candidates = frozenset(self.languages()) & LanguageDetector.supported()
        if not candidates:
            raise NotFound("no translate model is loaded, so no language to detect", field=field)
        if candidates not in self._detectors:
            self._detectors[candidates] = LanguageDetector(candidates)
        return self._detectors[candidates].rank(text, top=top)

    # --- summarize and answer over long texts ------------------------------------------
    def fit(
        self, task: str, fields: Mapping[str, str], choice: ModelChoice
    ) -> tuple[dict[str, str], InputUsed | None]:
        """Summarize/Answer fields cut to what the model takes (long_input.py), and what was
        used; texts up to `max_document_chars` are accepted."""
        spec = TASKS[task]
        for name in spec.text_fields:
            require_text(fields.get(name, ""), name, self.limits.max_document_chars)
        model = self.plane.model_for(task, fields, choice)
        return fit_long_input(
            spec, fields, model.bundle.tokenizer.count, model.bundle.manifest.max_source_length
        )

    def resolve_source(self, fields: Mapping[str, str], field: str = "text") -> dict[str, str]:
        """Translate fields with `source_language: auto` replaced by the detected language
        (the streaming RPC translates one text and detects the same way)."""
        job = TranslateJob(
            source_language=fields.get("source_language", ""),
            target_language=fields.get("target_language", ""),
        )
        source, _ = self._source_language(fields.get(field, ""), job, field)
        return {**fields, "source_language": source}

    # --- translating -------------------------------------------------------------------
    async def translate_many(
        self, texts: Sequence[str], job: TranslateJob, field: str = "texts"
    ) -> list[Translated | ServiceError]:
        """Each text translated, or its error in its place; outputs align with inputs."""
        if not texts:
            raise InvalidArgument(f"{field} is empty; send at least one text", field=field)
        if len(texts) > self.limits.max_texts:
            raise InvalidArgument(
                f"{field} has {len(texts)} texts; the limit is {self.limits.max_texts}",
                field=field,
            )
        gate = asyncio.Semaphore(self.limits.document_concurrency)

        async def one(index: int, text: str) -> Translated | ServiceError:
            try:
                return await self._translate(text, job, f"{field}[{index}]", gate)
            except ServiceError as error:
                return error

        return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(texts))))

    async def translate(self, text: str, job: TranslateJob, field: str = "text") -> Translated:
        gate = asyncio.Semaphore(self.limits.document_concurrency)
        return await self._translate(text, job, field, gate)

    async def _translate(
        self, text: str, job: TranslateJob, field: str, gate: asyncio.Semaphore
    ) -> Translated:
        if job.format not in FORMATS:
            raise InvalidArgument(
                f"format '{job.format}' is not supported; use one of {', '.join(FORMATS)}",
                field="format",
            )
        require_text(text, field, self.limits.max_document_chars)
        source, detection = self._source_language(text, job, field)
        fields = {"source_language": source, "target_language": job.target_language}
        model = self.plane.model_for("translate", {**fields, "text": text}, job.choice)
        tokenizer = model.bundle.tokenizer
        limit = model.bundle.manifest.max_source_length

        def fits(piece: str) -> bool:
            return tokenizer.count(piece) <= limit

        choice = ModelChoice(model.name, model.version)
        tasks: list[asyncio.Task[Generation]] = []

        def submit(sentences: list[str]) -> None:
            for sentence in sentences:
                tasks.append(
                    asyncio.ensure_future(self._sentence(sentence, fields, choice, job, gate))
                )

        try:
            if job.format == "html":  # one parse over the whole page, off the event loop
                document = await asyncio.to_thread(split_html, text, source, fits, field=field)
                submit(document.sentences)
            else:
                document = await self._split_streaming(text, source, fits, submit)
            generations = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one sentence failed or the caller left: stop the others
                task.cancel()
            raise
        single = job.format == "text" and document.sentences == [text.strip()]
        return _translated(document, generations, source, detection, single)

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
        self,
        sentence: str,
        fields: Mapping[str, str],
        choice: ModelChoice,
        job: TranslateJob,
        gate: asyncio.Semaphore,
    ) -> Generation:
        async with gate:
            return await self.plane.generate(
                "translate", {**fields, "text": sentence}, choice, job.params, job.deadline
            )

    def _source_language(
        self, text: str, job: TranslateJob, field: str
    ) -> tuple[str, Detection | None]:
        source = (job.source_language or "en").strip().lower()
        if source != AUTO:
            return source, None
        detection = self.detect(text, field, top=1)[0]
        target = job.target_language.strip().lower()
        if detection.language not in self.language_pairs() or (
            target and target not in self.language_pairs()[detection.language]
        ):
            pairs = ", ".join(f"{s}->{t}" for s, ts in self.language_pairs().items() for t in ts)
            raise NotFound(
                f"detected language '{detection.language}' (confidence "
                f"{detection.confidence:.2f}); no model translates {detection.language}->"
                f"{target or '?'} (available pairs: {pairs})",
                field="source_language",
            )
        return detection.language, detection


def _translated(
    document: Document,
    generations: Sequence[Generation],
    source: str,
    detection: Detection | None,
    single: bool,
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
        source_language=source,
        detection=detection,
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
