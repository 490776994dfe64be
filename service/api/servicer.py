"""The Seq2Seq servicer: protobuf in, data plane call, protobuf out; errors mapped in one place.

The task RPCs (unary and streaming twin) are generated from the task table
(`seq2seq_client.tasks.TASKS`): each handler converts the request by the table's field names,
calls the data plane and converts back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from seq2seq_client.tasks import TASKS, TaskSpec
from service.api import converters
from service.api.call_context import current_call
from service.api.status import abort_with
from service.errors import InternalError, InvalidArgument, ServiceError
from service.metrics import Metrics
from service.serving.data_plane import DataPlane, Generation, ModelChoice
from service.serving.documents import Documents, TranslateJob
from service.serving.long_input import InputUsed

log = logging.getLogger(__name__)


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    """The client's deadline on our monotonic clock, or None when it set none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _note(generation: Generation) -> None:
    """Hand the model and timings to this call's access-log line."""
    record = current_call()
    if record is not None:
        record.model = generation.model.name
        record.version = generation.model.version
        record.queue_seconds = generation.queue_seconds
        record.compute_seconds = generation.compute_seconds


def _unary_handler(spec: TaskSpec) -> Callable[..., Any]:
    async def handler(self: Seq2SeqServicer, request: Any, context: grpc.aio.ServicerContext):
        try:
            choice = converters.choice_from_pb(request.options)
            fields, used = self.fit(spec, converters.fields_from_pb(spec, request), choice)
            generation = await self.plane.generate(
                spec.name,
                fields,
                choice,
                converters.params_from_pb(request.options),
                _deadline(context),
            )
        except Exception as error:
            await self._fail(context, error)
            raise  # abort_with raised already; this keeps type checkers honest
        _note(generation)
        return converters.response(spec, generation, used)

    handler.__name__ = spec.rpc
    return handler


def _stream_handler(spec: TaskSpec) -> Callable[..., Any]:
    async def handler(
        self: Seq2SeqServicer, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        try:
            choice = converters.choice_from_pb(request.options)
            fields, used = self.fit(spec, converters.fields_from_pb(spec, request), choice)
            stream = self.plane.generate_stream(
                spec.name,
                fields,
                choice,
                converters.params_from_pb(request.options),
                _deadline(context),
            )
            async for item in stream:
                if isinstance(item, Generation):
                    _note(item)
                yield converters.stream_event(spec, item, used)
        except Exception as error:
            await self._fail(context, error)

    handler.__name__ = spec.stream_rpc
    return handler


async def _translate(
    self: Seq2SeqServicer, request: pb.TranslateRequest, context: grpc.aio.ServicerContext
) -> pb.GenerateResponse:
    """Translate goes through the documents layer: one text of any length, or many texts."""
    try:
        job = TranslateJob(
            source_language=request.source_language,
            target_language=request.target_language,
            format=request.format or "text",
            choice=converters.choice_from_pb(request.options),
            params=converters.params_from_pb(request.options),
            deadline=_deadline(context),
        )
        if request.texts:
            if request.text:
                raise InvalidArgument("send either text or texts, not both", field="texts")
            results = await self.documents.translate_many(list(request.texts), job)
            return pb.GenerateResponse(
                results=[converters.text_result(r, f"texts[{i}]") for i, r in enumerate(results)]
            )
        result = await self.documents.translate(request.text, job)
    except Exception as error:
        await self._fail(context, error)
        raise
    if result.parts:
        _note(result.parts[0][1])
    return converters.document_response(result)


class Seq2SeqServicer(pb_grpc.Seq2SeqServicer):
    def __init__(self, plane: DataPlane, metrics: Metrics, documents: Documents) -> None:
        self.plane = plane
        self.documents = documents
        self._metrics = metrics

    Translate = _translate

    def fit(
        self, spec: TaskSpec, fields: dict[str, str], choice: ModelChoice
    ) -> tuple[dict[str, str], InputUsed | None]:
        """Summarize/Answer over a long text: the part that fits, and what was used."""
        if spec.language_fields:  # Translate streams one text; documents go unary
            return self.documents.resolve_source(fields), None
        return self.documents.fit(spec.name, fields, choice)

    async def Detect(
        self, request: pb.DetectRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectResponse:
        try:
            ranked = self.documents.detect(request.text, top=request.top or 3)
        except Exception as error:
            await self._fail(context, error)
            raise
        return pb.DetectResponse(
            languages=[
                pb.LanguageScore(language=d.language, confidence=d.confidence) for d in ranked
            ]
        )

    async def _fail(self, context: grpc.aio.ServicerContext, error: Exception) -> None:
        record = current_call()
        if not isinstance(error, ServiceError):
            request_id = record.request_id if record is not None else ""
            log.exception(
                "unexpected error from %s",
                context.peer(),
                exc_info=error,
                extra={"request_id": request_id},
            )
            error = InternalError("internal error; the server logged the details")
        if record is not None:
            record.error = error.message
        self._metrics.rejected.labels(error.code.value).inc()
        await abort_with(context, error)

    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext):
        table = self.plane.models
        models = [
            converters.model_info(m, m.version == table.default_version(m.name))
            for m in sorted(table.all(), key=lambda m: (m.name, m.version))
            if not request.task or m.bundle.manifest.task == request.task
        ]
        return pb.ListModelsResponse(models=models)


for _spec in TASKS.values():
    if _spec.name != "translate":  # Translate: documents and many texts, above
        setattr(Seq2SeqServicer, _spec.rpc, _unary_handler(_spec))
    setattr(Seq2SeqServicer, _spec.stream_rpc, _stream_handler(_spec))
