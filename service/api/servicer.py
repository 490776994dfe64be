"""The Seq2Seq servicer: protobuf in, a front-door call, protobuf out; errors in one place.

The task RPCs (unary and streaming twin) are generated from the task table
(`seq2seq_client.tasks.TASKS`); Translate is the front door's translate (documents, many
texts, a source language to detect); every handler only converts.
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
from service.errors import InternalError, ServiceError
from service.metrics import Metrics
from service.serving.data_plane import Generation
from service.serving.front_door import FrontDoor, TaskAnswer, TranslateCall

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
            answer = await self.front_door.run(
                spec.name,
                converters.fields_from_pb(spec, request),
                converters.options_from_pb(request.options),
                _deadline(context),
            )
        except Exception as error:
            await self._fail(context, error)
            raise  # abort_with raised already; this keeps type checkers honest
        _note(answer.generation)
        return converters.response(spec, answer)

    handler.__name__ = spec.rpc
    return handler


def _stream_handler(spec: TaskSpec) -> Callable[..., Any]:
    async def handler(
        self: Seq2SeqServicer, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        try:
            stream = self.front_door.stream(
                spec.name,
                converters.fields_from_pb(spec, request),
                converters.options_from_pb(request.options),
                _deadline(context),
            )
            async for item in stream:
                if isinstance(item, TaskAnswer):
                    _note(item.generation)
                yield converters.stream_event(spec, item)
        except Exception as error:
            await self._fail(context, error)

    handler.__name__ = spec.stream_rpc
    return handler


class Seq2SeqServicer(pb_grpc.Seq2SeqServicer):
    def __init__(self, front_door: FrontDoor, metrics: Metrics) -> None:
        self.front_door = front_door
        self._metrics = metrics

    async def Translate(
        self, request: pb.TranslateRequest, context: grpc.aio.ServicerContext
    ) -> pb.GenerateResponse:
        """One text of any length (a document), or many texts."""
        call = TranslateCall(
            text=request.text,
            texts=list(request.texts) or None,
            source_language=request.source_language,
            target_language=request.target_language,
            format=request.format,
            options=converters.options_from_pb(request.options),
            deadline=_deadline(context),
        )
        try:
            result = await self.front_door.translate(call)
        except Exception as error:
            await self._fail(context, error)
            raise
        if isinstance(result, list):
            return pb.GenerateResponse(
                results=[converters.text_result(r, f"texts[{i}]") for i, r in enumerate(result)]
            )
        if result.parts:
            _note(result.parts[0][1])
        return converters.document_response(result)

    async def Detect(
        self, request: pb.DetectRequest, context: grpc.aio.ServicerContext
    ) -> pb.DetectResponse:
        try:
            ranked = self.front_door.detect(request.text, request.top)
        except Exception as error:
            await self._fail(context, error)
            raise
        return pb.DetectResponse(languages=[converters.language_score(d) for d in ranked])

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        listings = self.front_door.models(request.task)
        return pb.ListModelsResponse(models=[converters.model_info(m) for m in listings])

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


for _spec in TASKS.values():
    if _spec.name != "translate":  # Translate: documents and many texts, above
        setattr(Seq2SeqServicer, _spec.rpc, _unary_handler(_spec))
    setattr(Seq2SeqServicer, _spec.stream_rpc, _stream_handler(_spec))
