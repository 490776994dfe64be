"""The transport-neutral data plane: validate, pick the model, tokenize, run, detokenize.

Every front end (the gRPC servicer today, HTTP later) calls `generate` / `generate_stream`
with a task from the task table (`seq2seq_client.tasks`), the request's fields by name, the model
choice and one `DecodingParams`; it knows nothing of protobuf. Every refusal is a
ServiceError that names the request field.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import numpy as np

from seq2seq_client.tasks import TASKS, TaskSpec
from service.engine.constraint_builder import build_constraints
from service.engine.core import EngineObserver
from service.engine.output_text import TextHypothesis, decode_output
from service.engine.repository import LoadedBundle
from service.engine.requests import GenerationOutput, Request, TokenEvent
from service.engine_process import async_bridge
from service.engine_process.backend import BatchingConfig, PreparedModel
from service.engine_process.thread_engine import ThreadPrepared
from service.errors import Expired, InvalidArgument
from service.params import DecodingParams, ModelLimits
from service.serving.detokenize import IncrementalDetokenizer
from service.serving.models import ModelTable, ServedModel


@dataclass(frozen=True)
class ModelChoice:
    """Which model a request names; empty / 0 = the task's default and newest version."""

    name: str = ""
    version: int = 0


@dataclass(frozen=True)
class Limits:
    max_input_chars: int  # longest text or context accepted
    max_beam_size: int  # largest beam accepted


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int
    provider: str


@dataclass(frozen=True)
class Generation:
    hypotheses: tuple[TextHypothesis, ...]  # n-best, best first
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


def require_text(value: str, field: str, limit: int) -> str:
    """Non-empty (format characters such as U+200B do not count), within `limit`, no controls."""
    if not any(not c.isspace() and unicodedata.category(c) != "Cf" for c in value):
        raise InvalidArgument(f"{field} is empty; send some text", field=field)
    if len(value) > limit:
        raise InvalidArgument(
            f"{field} has {len(value)} characters; the limit is {limit}", field=field
        )
    return _require_no_controls(value, field)


class DataPlane:
    """The served models behind the task table; one instance per server."""

    def __init__(
        self,
        limits: Limits,
        batching: BatchingConfig,
        default_versions: Mapping[str, int] | None = None,
    ) -> None:
        self._limits = limits
        self._batching = batching
        self.models = ModelTable(default_versions)

    def add_model(
        self, model: PreparedModel | LoadedBundle, observer: EngineObserver
    ) -> ServedModel:
        """Start serving a bundle its engine backend loaded (a LoadedBundle gets an engine
        thread of this process)."""
        if isinstance(model, LoadedBundle):
            model = ThreadPrepared(model, self._batching)
        return self.models.add(model, observer)

    # --- the tasks ---------------------------------------------------------------------
    async def generate(
        self,
        task: str,
        fields: Mapping[str, str],
        choice: ModelChoice,
        params: DecodingParams,
        deadline: float | None = None,
    ) -> Generation:
        prepared = self._prepare(TASKS[task], fields, choice, params, deadline, stream=False)
        output = await async_bridge.run_request(prepared.model.engine, prepared.request)
        return self._generation(prepared, output)

    async def generate_stream(
        self,
        task: str,
        fields: Mapping[str, str],
        choice: ModelChoice,
        params: DecodingParams,
        deadline: float | None = None,
    ) -> AsyncIterator[StreamToken | Generation]:
        """Token events as they are decoded, then the final Generation. Validation errors
        are raised on the first iteration."""
        prepared = self._prepare(TASKS[task], fields, choice, params, deadline, stream=True)
        tokenizer = prepared.model.bundle.tokenizer
        text = IncrementalDetokenizer(tokenizer)
        stream = async_bridge.stream_request(prepared.model.engine, prepared.request)
        async for item in stream:
            if isinstance(item, TokenEvent):
                text.add(item.token_id)
                yield StreamToken(
                    index=item.index,
                    token=tokenizer.id_to_token(item.token_id),
                    text=text.text,
                    log_prob=item.log_prob,
                )
            else:
                yield self._generation(prepared, item)

    def model_for(self, task: str, fields: Mapping[str, str], choice: ModelChoice) -> ServedModel:
        """The model a request with these fields would get (documents size their pieces)."""
        return self._model_for(TASKS[task], fields, choice)

    # --- preparing ---------------------------------------------------------------------
    def _prepare(
        self,
        spec: TaskSpec,
        fields: Mapping[str, str],
        choice: ModelChoice,
        params: DecodingParams,
        deadline: float | None,
        stream: bool,
    ) -> _Prepared:
        started = time.monotonic()
        for name in spec.text_fields:
            require_text(fields.get(name, ""), name, self._limits.max_input_chars)
        model = self._model_for(spec, fields, choice)
        manifest = model.bundle.manifest
        resolved = params.for_model(
            ModelLimits(
                max_output_tokens=manifest.max_target_length,
                max_beam_size=self._limits.max_beam_size,
                max_batch_size=self._batching.policy_config.max_batch_size,
                has_attention=manifest.attention.kind != "none",
                defaults=manifest.decoding,
            )
        )
        source_text = spec.to_source(fields)
        encoded = model.bundle.tokenizer.encode(
            source_text, max_tokens=manifest.max_source_length, field=spec.source_field
        )
        source_ids = np.asarray(encoded.ids, dtype=np.int64)
        constraints = build_constraints(
            resolved,
            source_ids=source_ids,
            source_text=source_text,
            tokenizer=model.bundle.tokenizer,
            manifest=manifest,
        )
        if deadline is not None and deadline <= started:
            raise Expired("the deadline had already passed when the request arrived")
        request = Request(
            request_id=uuid.uuid4().hex,
            source_ids=source_ids,
            params=resolved,
            constraints=constraints.constraints,
            terms=constraints.terms,
            listener=async_bridge.new_listener(stream),
            deadline=deadline,
            arrival=started,
        )
        return _Prepared(
            model=model, request=request, source_tokens=encoded.tokens, started=started
        )

    def _model_for(
        self, spec: TaskSpec, fields: Mapping[str, str], choice: ModelChoice
    ) -> ServedModel:
        name = _require_name(choice.name, "options.model")
        if not spec.language_fields:
            name = name or self.models.default_for(spec.name)
            return self.models.get(spec.name, name, choice.version)
        source_field, target_field = spec.language_fields
        source = _require_name((fields.get(source_field) or "en").strip().lower(), source_field)
        target = _require_name((fields.get(target_field) or "").strip().lower(), target_field)
        if not target:
            raise InvalidArgument(
                f"{target_field} is empty; name one, e.g. 'fr'", field=target_field
            )
        name = name or self.models.default_for(spec.name, source, target)
        model = self.models.get(spec.name, name, choice.version)
        languages = model.bundle.manifest.languages
        if languages is not None and (languages.source, languages.target) != (source, target):
            raise InvalidArgument(
                f"model '{name}' translates {languages.source}->{languages.target}, "
                f"not {source}->{target}",
                field=target_field,
            )
        return model

    def _generation(self, prepared: _Prepared, output: GenerationOutput) -> Generation:
        bundle = prepared.model.bundle
        params = prepared.request.params
        decoded = decode_output(
            output,
            bundle.tokenizer,
            bundle.manifest,
            params,
            prepared.request.terms,
        )
        return Generation(
            hypotheses=decoded.hypotheses,
            source_tokens=prepared.source_tokens,
            model=ModelRef(
                name=bundle.manifest.name,
                version=bundle.manifest.version,
                provider=bundle.provider,
            ),
            queue_seconds=output.queue_seconds,
            compute_seconds=output.compute_seconds,
            total_seconds=time.monotonic() - prepared.started,
            answerable=decoded.answerable,
        )

    # --- lifecycle ---------------------------------------------------------------------
    async def drain(self, grace_seconds: float) -> None:
        """Refuse new work, let in-flight requests finish within the grace period, stop."""
        self.models.close_all()
        deadline = time.monotonic() + grace_seconds
        while not self.models.all_idle() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.models.stop_all(timeout=1.0)
