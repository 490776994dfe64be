"""The served models behind every protocol: route a request to its model, run it, stream it.

Transport-neutral and trusting: the front door (front_door.py) has checked the request and
resolved its decoding parameters for the model before it calls in here. Routing refusals
(no such model, version or language pair) are ServiceErrors naming the request field.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from seq2seq_client.tasks import TaskSpec
from service.engine.core import EngineObserver
from service.engine.output_text import TextHypothesis, decode_output
from service.engine.preparation import Source, model_limits, new_request
from service.engine.repository import LoadedBundle
from service.engine.requests import GenerationOutput, Request, TokenEvent
from service.engine_process import async_bridge
from service.engine_process.backend import BatchingConfig, PreparedModel
from service.engine_process.thread_engine import ThreadPrepared
from service.errors import Expired, InvalidArgument
from service.params import DecodingParams, ModelLimits
from service.serving.detokenize import IncrementalDetokenizer
from service.serving.models import ModelChoice, ModelTable, ServedModel


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


class DataPlane:
    """The served models behind the task table; one instance per server."""

    def __init__(
        self,
        batching: BatchingConfig,
        max_beam_size: int,
        default_versions: Mapping[str, int] | None = None,
    ) -> None:
        self._batching = batching
        self._max_beam_size = max_beam_size
        self.models = ModelTable(default_versions)

    def add_model(
        self, model: PreparedModel | LoadedBundle, observer: EngineObserver
    ) -> ServedModel:
        """Start serving a bundle its engine backend loaded (a LoadedBundle gets an engine
        thread of this process)."""
        if isinstance(model, LoadedBundle):
            model = ThreadPrepared(model, self._batching)
        return self.models.add(model, observer)

    # --- routing ---------------------------------------------------------------------------
    def resolve(
        self, spec: TaskSpec, fields: Mapping[str, str], choice: ModelChoice
    ) -> ServedModel:
        """The model a request gets: the one it names, else the task's default (for
        translate, by its language fields: codes already lower case, source defaulted)."""
        if not spec.language_fields:
            name = choice.name or self.models.default_for(spec.name)
            return self.models.get(spec.name, name, choice.version)
        source_field, target_field = spec.language_fields
        source, target = fields[source_field], fields[target_field]
        name = choice.name or self.models.default_for(spec.name, source, target)
        model = self.models.get(spec.name, name, choice.version)
        languages = model.bundle.manifest.languages
        if languages is not None and (languages.source, languages.target) != (source, target):
            raise InvalidArgument(
                f"model '{name}' translates {languages.source}->{languages.target}, "
                f"not {source}->{target}",
                field=target_field,
            )
        return model

    def limits(self, model: ServedModel) -> ModelLimits:
        """What `DecodingParams.for_model` checks a request against on this model."""
        return model_limits(
            model.bundle.manifest,
            max_beam_size=self._max_beam_size,
            max_batch_size=self._batching.policy_config.max_batch_size,
        )

    # --- running ---------------------------------------------------------------------------
    async def generate(
        self,
        model: ServedModel,
        source: Source,
        params: DecodingParams,
        deadline: float | None = None,
    ) -> Generation:
        """Decode one source with parameters resolved for `model`."""
        request = self._request(model, source, params, deadline, stream=False)
        output = await async_bridge.run_request(model.engine, request)
        return self._generation(model, source, request, output)

    async def generate_stream(
        self,
        model: ServedModel,
        source: Source,
        params: DecodingParams,
        deadline: float | None = None,
    ) -> AsyncIterator[StreamToken | Generation]:
        """Token events as they are decoded, then the final Generation."""
        request = self._request(model, source, params, deadline, stream=True)
        tokenizer = model.bundle.tokenizer
        text = IncrementalDetokenizer(tokenizer)
        async for item in async_bridge.stream_request(model.engine, request):
            if isinstance(item, TokenEvent):
                text.add(item.token_id)
                yield StreamToken(
                    index=item.index,
                    token=tokenizer.id_to_token(item.token_id),
                    text=text.text,
                    log_prob=item.log_prob,
                )
            else:
                yield self._generation(model, source, request, item)

    def _request(
        self,
        model: ServedModel,
        source: Source,
        params: DecodingParams,
        deadline: float | None,
        stream: bool,
    ) -> Request:
        arrival = time.monotonic()
        request = new_request(
            model.bundle,
            source,
            params,
            request_id=uuid.uuid4().hex,
            listener=async_bridge.new_listener(stream),
            arrival=arrival,
            deadline=deadline,
        )
        if deadline is not None and deadline <= arrival:
            raise Expired("the deadline had already passed when the request arrived")
        return request

    @staticmethod
    def _generation(
        model: ServedModel, source: Source, request: Request, output: GenerationOutput
    ) -> Generation:
        bundle = model.bundle
        decoded = decode_output(
            output, bundle.tokenizer, bundle.manifest, request.params, request.terms
        )
        return Generation(
            hypotheses=decoded.hypotheses,
            source_tokens=source.tokens,
            model=ModelRef(
                name=bundle.manifest.name,
                version=bundle.manifest.version,
                provider=bundle.provider,
            ),
            queue_seconds=output.queue_seconds,
            compute_seconds=output.compute_seconds,
            total_seconds=time.monotonic() - request.arrival,
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
