"""The transport-neutral data plane: validate, tokenize, run, detokenize.

Both the gRPC servicer and any later front end (HTTP, batch CLI) call this class; it
knows nothing of protobuf. Every refusal is a ServiceError that names the request field.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import numpy as np

from service.bundle import Task, answer_source_text
from service.engine import async_bridge
from service.engine.engine import EngineObserver
from service.engine.models import ModelTable, ServedModel
from service.engine.repository import LoadedBundle
from service.engine.requests import (
    DecodeParams,
    GenerationOutput,
    Request,
    TokenEvent,
)
from service.engine.scheduler import SchedulerConfig
from service.errors import Expired, InvalidArgument


@dataclass(frozen=True)
class DecodingOptions:
    """What a caller may ask of decoding; zero values mean the server's default."""

    model: str = ""
    model_version: int = 0
    beam_size: int = 0
    n_best: int = 0
    max_output_tokens: int = 0
    length_penalty: float = 0.0
    return_attention: bool = False
    return_scores: bool = False


@dataclass(frozen=True)
class Limits:
    max_input_chars: int  # longest text or context accepted
    max_beam_size: int  # largest beam accepted


@dataclass(frozen=True)
class Hypothesis:
    text: str
    score: float  # sum of token log-probabilities
    target_tokens: tuple[str, ...]
    token_scores: tuple[float, ...]  # empty unless asked
    attention: np.ndarray | None  # (T, S) when asked
    finish_reason: str  # "eos" | "length"


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int
    provider: str


@dataclass(frozen=True)
class Generation:
    hypotheses: tuple[Hypothesis, ...]
    source_tokens: tuple[str, ...]
    model: ModelRef
    queue_seconds: float
    compute_seconds: float
    total_seconds: float
    answerable: bool = True  # False: an answer model said the context lacks the answer


@dataclass(frozen=True)
class StreamToken:
    index: int  # position in the output
    token: str  # the piece as the tokenizer spells it
    text: str  # the decoded output so far
    log_prob: float


@dataclass(frozen=True)
class _Prepared:
    model: ServedModel
    request: Request
    source_tokens: tuple[str, ...]
    started: float


# Unicode category Cc (C0, DEL and C1 controls) less tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_MAX_NAME_CHARS = 128  # longest model name or language code accepted


def _require_no_controls(value: str, field: str) -> str:
    """Refuse control characters (NUL, BEL, ESC, C1...) other than tab and newlines.

    The tokenizers stop or emit garbage at NUL, and such characters would reach log lines
    verbatim; the message names the first one by position, never echoing it.
    """
    found = _CONTROL.search(value)
    if found is not None:
        raise InvalidArgument(
            f"{field} holds control character U+{ord(found.group()):04X} at position "
            f"{found.start()}; only tab, newline and carriage return are accepted",
            field=field,
        )
    return value


def _require_name(value: str, field: str) -> str:
    """A model name or language code: short and free of control characters."""
    if len(value) > _MAX_NAME_CHARS:
        raise InvalidArgument(
            f"{field} has {len(value)} characters; the limit is {_MAX_NAME_CHARS}", field=field
        )
    return _require_no_controls(value, field)


def _require_text(value: str, field: str, limit: int) -> str:
    """Non-empty (format characters such as U+200B do not count), within `limit`, no controls."""
    if not any(not c.isspace() and unicodedata.category(c) != "Cf" for c in value):
        raise InvalidArgument(f"{field} is empty; send some text", field=field)
    if len(value) > limit:
        raise InvalidArgument(
            f"{field} has {len(value)} characters; the limit is {limit}", field=field
        )
    return _require_no_controls(value, field)


class InferenceService:
    """The served models behind three tasks; one instance per server."""

    def __init__(
        self,
        limits: Limits,
        scheduler_config: SchedulerConfig,
        default_versions: Mapping[str, int] | None = None,
    ) -> None:
        self._limits = limits
        self._scheduler_config = scheduler_config
        self.models = ModelTable(default_versions)

    def add_model(self, bundle: LoadedBundle, observer: EngineObserver) -> ServedModel:
        """Start serving a loaded bundle on its own scheduler and engine thread."""
        return self.models.add(bundle, self._scheduler_config, observer)

    # --- the three tasks -------------------------------------------------------------
    async def translate(
        self,
        text: str,
        source: str,
        target: str,
        options: DecodingOptions,
        deadline: float | None = None,
    ) -> Generation:
        prepared = self._prepare_translate(text, source, target, options, deadline, stream=False)
        return await self._run(prepared)

    async def summarize(
        self, text: str, options: DecodingOptions, deadline: float | None = None
    ) -> Generation:
        prepared = self._prepare_summarize(text, options, deadline, stream=False)
        return await self._run(prepared)

    async def answer(
        self,
        question: str,
        context: str,
        options: DecodingOptions,
        deadline: float | None = None,
    ) -> Generation:
        prepared = self._prepare_answer(question, context, options, deadline, stream=False)
        return await self._run(prepared)

    def translate_stream(
        self,
        text: str,
        source: str,
        target: str,
        options: DecodingOptions,
        deadline: float | None = None,
    ) -> AsyncIterator[StreamToken | Generation]:
        prepared = self._prepare_translate(text, source, target, options, deadline, stream=True)
        return self._stream(prepared)

    def summarize_stream(
        self, text: str, options: DecodingOptions, deadline: float | None = None
    ) -> AsyncIterator[StreamToken | Generation]:
        return self._stream(self._prepare_summarize(text, options, deadline, stream=True))

    def answer_stream(
        self,
        question: str,
        context: str,
        options: DecodingOptions,
        deadline: float | None = None,
    ) -> AsyncIterator[StreamToken | Generation]:
        prepared = self._prepare_answer(question, context, options, deadline, stream=True)
        return self._stream(prepared)

    # --- preparing ---------------------------------------------------------------------
    def _prepare_translate(
        self,
        text: str,
        source: str,
        target: str,
        options: DecodingOptions,
        deadline: float | None,
        stream: bool,
    ) -> _Prepared:
        source = _require_name((source or "en").strip().lower(), "source_language")
        target = _require_name(target.strip().lower(), "target_language")
        if not target:
            raise InvalidArgument(
                "target_language is empty; name one, e.g. 'fr'", field="target_language"
            )
        _require_text(text, "text", self._limits.max_input_chars)
        name = _require_name(options.model, "options.model")
        name = name or self.models.default_for("translate", source, target)
        model = self.models.get("translate", name, options.model_version)
        languages = model.bundle.manifest.languages
        if languages is not None and (languages.source, languages.target) != (source, target):
            raise InvalidArgument(
                f"model '{name}' translates {languages.source}->{languages.target}, "
                f"not {source}->{target}",
                field="target_language",
            )
        return self._prepare(model, text, "text", options, deadline, stream)

    def _prepare_summarize(
        self, text: str, options: DecodingOptions, deadline: float | None, stream: bool
    ) -> _Prepared:
        _require_text(text, "text", self._limits.max_input_chars)
        return self._prepare(
            self._model_for("summarize", options), text, "text", options, deadline, stream
        )

    def _prepare_answer(
        self,
        question: str,
        context: str,
        options: DecodingOptions,
        deadline: float | None,
        stream: bool,
    ) -> _Prepared:
        _require_text(question, "question", self._limits.max_input_chars)
        _require_text(context, "context", self._limits.max_input_chars)
        source = answer_source_text(question, context)
        return self._prepare(
            self._model_for("answer", options), source, "context", options, deadline, stream
        )

    def _model_for(self, task: Task, options: DecodingOptions) -> ServedModel:
        name = _require_name(options.model, "options.model") or self.models.default_for(task)
        return self.models.get(task, name, options.model_version)

    def _decode_params(self, model: ServedModel, options: DecodingOptions) -> DecodeParams:
        limit = model.bundle.manifest.max_target_length
        if options.beam_size > self._limits.max_beam_size:
            raise InvalidArgument(
                f"options.beam_size {options.beam_size} is above this server's cap of "
                f"{self._limits.max_beam_size}",
                field="options.beam_size",
            )
        if options.beam_size > self._scheduler_config.max_batch_size:
            raise InvalidArgument(
                f"options.beam_size {options.beam_size} is above this server's "
                f"max_batch_size of {self._scheduler_config.max_batch_size}",
                field="options.beam_size",
            )
        if options.n_best > max(1, options.beam_size):
            raise InvalidArgument(
                f"options.n_best {options.n_best} exceeds the beam size "
                f"{max(1, options.beam_size)}",
                field="options.n_best",
            )
        if options.max_output_tokens > limit:
            raise InvalidArgument(
                f"options.max_output_tokens {options.max_output_tokens} is above model "
                f"'{model.name}' limit of {limit}",
                field="options.max_output_tokens",
            )
        if options.return_attention and model.bundle.manifest.attention.kind == "none":
            raise InvalidArgument(
                f"model '{model.name}' has no attention (a no-attention baseline); "
                "leave options.return_attention unset",
                field="options.return_attention",
            )
        if not math.isfinite(options.length_penalty) or options.length_penalty < 0:
            raise InvalidArgument(
                "options.length_penalty must be a finite number >= 0",
                field="options.length_penalty",
            )
        return DecodeParams(
            max_output_tokens=options.max_output_tokens or limit,
            return_attention=options.return_attention,
            return_scores=options.return_scores,
            beam_size=max(1, options.beam_size),
            n_best=max(1, options.n_best),
            length_penalty=options.length_penalty,
        )

    def _prepare(
        self,
        model: ServedModel,
        text: str,
        field: str,
        options: DecodingOptions,
        deadline: float | None,
        stream: bool,
    ) -> _Prepared:
        started = time.monotonic()
        params = self._decode_params(model, options)
        encoded = model.bundle.tokenizer.encode(
            text, max_tokens=model.bundle.manifest.max_source_length, field=field
        )
        if deadline is not None and deadline <= started:
            raise Expired("the deadline had already passed when the request arrived")
        request = Request(
            request_id=uuid.uuid4().hex,
            source_ids=np.asarray(encoded.ids, dtype=np.int64),
            params=params,
            listener=async_bridge.new_listener(stream),
            deadline=deadline,
            arrival=started,
        )
        return _Prepared(
            model=model, request=request, source_tokens=encoded.tokens, started=started
        )

    # --- running -----------------------------------------------------------------------
    async def _run(self, prepared: _Prepared) -> Generation:
        output = await async_bridge.run_request(prepared.model.scheduler, prepared.request)
        return self._generation(prepared, output)

    async def _stream(self, prepared: _Prepared) -> AsyncIterator[StreamToken | Generation]:
        tokenizer = prepared.model.bundle.tokenizer
        so_far: list[int] = []
        async for item in async_bridge.stream_request(prepared.model.scheduler, prepared.request):
            if isinstance(item, TokenEvent):
                so_far.append(item.token_id)
                yield StreamToken(
                    index=item.index,
                    token=tokenizer.id_to_token(item.token_id),
                    text=tokenizer.decode(so_far),
                    log_prob=item.log_prob,
                )
            else:
                yield self._generation(prepared, item)

    def _generation(self, prepared: _Prepared, output: GenerationOutput) -> Generation:
        bundle = prepared.model.bundle
        no_answer_id = bundle.manifest.special_tokens.no_answer_id
        is_answer = bundle.manifest.task == "answer"

        def answerable(ids: tuple[int, ...]) -> bool:
            return not (is_answer and ids[:1] == (no_answer_id,))

        params = prepared.request.params
        tokenizer = bundle.tokenizer
        hypotheses = tuple(
            Hypothesis(
                text=tokenizer.decode(h.token_ids) if answerable(h.token_ids) else "",
                score=float(h.score),
                target_tokens=tuple(tokenizer.id_to_token(i) for i in h.token_ids),
                token_scores=h.token_scores if params.return_scores else (),
                attention=h.attention if params.return_attention else None,
                finish_reason=h.finish_reason,
            )
            for h in output.hypotheses
        )
        return Generation(
            hypotheses=hypotheses,
            source_tokens=prepared.source_tokens,
            model=ModelRef(
                name=bundle.manifest.name,
                version=bundle.manifest.version,
                provider=bundle.runtime.provider,
            ),
            queue_seconds=output.queue_seconds,
            compute_seconds=output.compute_seconds,
            total_seconds=time.monotonic() - prepared.started,
            answerable=answerable(output.best.token_ids),
        )

    # --- lifecycle ---------------------------------------------------------------------
    async def drain(self, grace_seconds: float) -> None:
        """Refuse new work, let in-flight requests finish within the grace period, stop."""
        self.models.close_all()
        deadline = time.monotonic() + grace_seconds
        while not self.models.all_idle() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.models.stop_all(timeout=1.0)
