"""The front door: every operation the server offers, once, with every check of a request.

gRPC (service/api), our HTTP API and LibreTranslate's (service/http) only convert between
their wire format and these calls: translate (one text of any length, a document, many texts,
a source language to detect), run or stream any task of the task table, detect, list the
models and say whether the server serves. The same mistake therefore gets the same status and
message on every protocol; a message names the field as the caller's protocol names it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from seq2seq_client.tasks import TASKS, TaskSpec
from service.engine.preparation import Source, encode_source
from service.errors import InvalidArgument, NotFound, ServiceError
from service.params import DecodingParams
from service.serving import validation as check
from service.serving.data_plane import DataPlane, Generation, StreamToken
from service.serving.documents import DocumentJob, Documents, Translated
from service.serving.long_input import InputUsed, fit_long_input
from service.serving.models import ModelChoice, ModelListing, ServedModel
from service.text.detect import Detection, LanguageDetector

AUTO = "auto"  # source_language: detect it
DEFAULT_SOURCE = "en"  # source_language when a request names none
DEFAULT_TOP = 3  # languages Detect ranks when a request asks for 0


@dataclass(frozen=True)
class RequestLimits:
    max_input_chars: int = 4000  # longest text a model reads in one request
    max_document_chars: int = 100_000  # longest text of a call (split or cut to fit)
    max_texts: int = 128  # most texts in one call
    document_concurrency: int = 256  # sentences of one call queued or decoding at once


@dataclass(frozen=True)
class FieldNames:
    """How a protocol names a translate call's fields (errors name them its way)."""

    text: str = "text"
    texts: str = "texts"
    source_language: str = "source_language"
    target_language: str = "target_language"


@dataclass(frozen=True)
class TranslateCall:
    """One Translate: `text` (a sentence or a whole document) or `texts` (many)."""

    text: str | None = None
    texts: Sequence[str] | None = None  # None: not sent (an empty list is refused)
    source_language: str = ""  # "" = "en"; "auto" = detect it
    target_language: str = ""
    format: str = ""  # "" or "text", or "html"
    options: Mapping[str, object] = field(default_factory=dict)  # DecodingOptions by name
    deadline: float | None = None  # time.monotonic() seconds
    names: FieldNames = FieldNames()


@dataclass(frozen=True)
class TaskAnswer:
    """A task's result, and the part of a long input it read (None: all of it)."""

    generation: Generation
    used: InputUsed | None


@dataclass(frozen=True)
class Health:
    serving: bool  # takes requests: not draining, and some model's engine is up
    models: dict[str, bool]  # model name -> some version of it takes requests


@dataclass(frozen=True)
class _Prepared:
    model: ServedModel
    source: Source
    params: DecodingParams  # resolved for the model
    used: InputUsed | None


class FrontDoor:
    """One per server process, shared by every protocol it serves."""

    def __init__(self, plane: DataPlane, limits: RequestLimits) -> None:
        self.plane = plane
        self.limits = limits
        self.documents = Documents(plane, limits.document_concurrency)
        self.draining = False  # set on SIGTERM: every protocol answers UNAVAILABLE (or 503)
        self._detectors: dict[frozenset[str], LanguageDetector] = {}

    # --- translate -------------------------------------------------------------------------
    async def translate(self, call: TranslateCall) -> Translated | list[Translated | ServiceError]:
        """One text, or with `texts` each text translated or its error in its place."""
        names = call.names
        choice, params = check.decoding_options(call.options)
        text_format = check.require_format(call.format)
        if call.texts and call.text:
            raise InvalidArgument(
                f"send either {names.text} or {names.texts}, not both", field=names.texts
            )
        gate = self.documents.gate()
        if call.texts is None or (not call.texts and call.text):
            return await self._translate(
                call.text or "", names.text, call, choice, params, text_format, gate
            )
        check.require_texts(call.texts, names.texts, self.limits.max_texts)

        async def one(index: int, text: str) -> Translated | ServiceError:
            name = f"{names.texts}[{index}]"
            try:
                return await self._translate(text, name, call, choice, params, text_format, gate)
            except ServiceError as error:
                return error

        return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(call.texts))))

    async def _translate(
        self,
        text: str,
        name: str,
        call: TranslateCall,
        choice: ModelChoice,
        params: DecodingParams,
        text_format: str,
        gate: asyncio.Semaphore,
    ) -> Translated:
        check.require_text(text, name, self.limits.max_document_chars)
        source, target, detection = self._languages(text, name, call)
        fields = {"source_language": source, "target_language": target, "text": text}
        model = self.plane.resolve(TASKS["translate"], fields, choice)
        job = DocumentJob(
            model=model,
            params=params.for_model(self.plane.limits(model)),
            source_language=source,
            detection=detection,
            format=text_format,
            field=name,
            deadline=call.deadline,
        )
        return await self.documents.translate(text, job, gate)

    def _languages(
        self, text: str, name: str, call: TranslateCall
    ) -> tuple[str, str, Detection | None]:
        """(source, target, detection): codes checked, "auto" detected among served pairs."""
        names = call.names
        source = check.language(call.source_language, names.source_language, DEFAULT_SOURCE)
        target = check.language(call.target_language, names.target_language)
        if source != AUTO:
            return source, check.require_target(target, names.target_language), None
        detection = self.detect(text, 1, name)[0]
        pairs = self.plane.models.language_pairs()
        if detection.language not in pairs or (target and target not in pairs[detection.language]):
            available = ", ".join(f"{s}->{t}" for s, ts in pairs.items() for t in ts)
            raise NotFound(
                f"detected language '{detection.language}' (confidence "
                f"{detection.confidence:.2f}); no model translates {detection.language}->"
                f"{target or '?'} (available pairs: {available})",
                field=names.source_language,
            )
        return detection.language, check.require_target(target, names.target_language), detection

    # --- any task of the task table --------------------------------------------------------
    async def run(
        self,
        task: str,
        fields: Mapping[str, str],
        options: Mapping[str, object],
        deadline: float | None = None,
    ) -> TaskAnswer:
        """One request of `task` (its fields by the task table's names)."""
        prepared = self._prepare(TASKS[task], fields, options)
        generation = await self.plane.generate(
            prepared.model, prepared.source, prepared.params, deadline
        )
        return TaskAnswer(generation, prepared.used)

    async def stream(
        self,
        task: str,
        fields: Mapping[str, str],
        options: Mapping[str, object],
        deadline: float | None = None,
    ) -> AsyncIterator[StreamToken | TaskAnswer]:
        """Tokens as they are decoded, then the TaskAnswer; a refusal is raised on the first
        iteration, as the unary call would raise it."""
        prepared = self._prepare(TASKS[task], fields, options)
        stream = self.plane.generate_stream(
            prepared.model, prepared.source, prepared.params, deadline
        )
        async for item in stream:
            yield item if isinstance(item, StreamToken) else TaskAnswer(item, prepared.used)

    def _prepare(
        self, spec: TaskSpec, fields: Mapping[str, str], options: Mapping[str, object]
    ) -> _Prepared:
        """Check the request, pick its model, cut a long input to what the model takes
        (Summarize, Answer) and encode it."""
        choice, params = check.decoding_options(options)
        values = {name: fields.get(name) or "" for name in spec.fields}
        limits = self.limits
        for name in spec.text_fields:
            check.require_text(values[name], name, limits.max_document_chars)
        if spec.language_fields:  # one text: what a model reads in one request
            for name in spec.text_fields:
                check.require_length(values[name], name, limits.max_input_chars)
            call = TranslateCall(
                source_language=values["source_language"],
                target_language=values["target_language"],
            )
            source, target, _ = self._languages(values[spec.source_field], "text", call)
            values.update(source_language=source, target_language=target)
        model = self.plane.resolve(spec, values, choice)
        values, used = self._fit(spec, values, model)
        return _Prepared(
            model=model,
            source=encode_source(model.bundle, spec.to_source(values), spec.source_field),
            params=params.for_model(self.plane.limits(model)),
            used=used,
        )

    def _fit(
        self, spec: TaskSpec, values: dict[str, str], model: ServedModel
    ) -> tuple[dict[str, str], InputUsed | None]:
        """A long Summarize text or Answer context cut to the part that fits the model."""
        if spec.language_fields:  # Translate splits documents instead (translate above)
            return values, None
        manifest = model.bundle.manifest
        fitted, used = fit_long_input(
            spec, values, model.bundle.tokenizer.count, manifest.max_source_length
        )
        for name in spec.text_fields:
            check.require_length(fitted[name], name, self.limits.max_input_chars)
        return fitted, used

    # --- languages, models, health ---------------------------------------------------------
    def detect(self, text: str, top: int = 0, field: str = "text") -> list[Detection]:
        """The most likely languages of `text` among those the served translate models
        speak, best first."""
        check.require_text(text, field, self.limits.max_document_chars)
        check.require_count(top, "top")
        candidates = frozenset(self.plane.models.languages()) & LanguageDetector.supported()
        if not candidates:
            raise NotFound("no translate model is loaded, so no language to detect", field=field)
        if candidates not in self._detectors:
            self._detectors[candidates] = LanguageDetector(candidates)
        return self._detectors[candidates].rank(text, top=top or DEFAULT_TOP)

    def language_pairs(self) -> dict[str, list[str]]:
        """source language -> target languages, over the served translate models."""
        return self.plane.models.language_pairs()

    def languages(self) -> list[str]:
        """Every language a served translate model reads or writes."""
        return self.plane.models.languages()

    def models(self, task: str = "") -> list[ModelListing]:
        """The served models (of `task`, when given), by name and version."""
        return self.plane.models.listings(task)

    def health(self) -> Health:
        available: dict[str, bool] = {}
        for model in self.plane.models.all():
            available[model.name] = available.get(model.name, False) or model.engine.available
        return Health(serving=not self.draining and any(available.values()), models=available)
