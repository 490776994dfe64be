"""The Seq2Seq servicer: protobuf in, engine call, protobuf out; errors mapped in one place."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from service.api import converters
from service.api.call_context import current_call
from service.api.gen.seq2seq.v1 import seq2seq_pb2 as pb
from service.api.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.api.status import abort_with
from service.engine.inference import Generation, InferenceService, StreamToken
from service.errors import InternalError, ServiceError
from service.metrics import Metrics

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


class Seq2SeqServicer(pb_grpc.Seq2SeqServicer):
    def __init__(self, inference: InferenceService, metrics: Metrics) -> None:
        self._inference = inference
        self._metrics = metrics

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

    async def _unary(
        self, context: grpc.aio.ServicerContext, call: Awaitable[Generation], task: str
    ) -> pb.GenerateResponse | pb.AnswerResponse:
        try:
            generation = await call
        except Exception as error:
            await self._fail(context, error)
            raise  # abort_with raised already; this keeps type checkers honest
        _note(generation)
        if task == "answer":
            return converters.answer_response(generation)
        return converters.generate_response(generation)

    async def _streaming(
        self,
        context: grpc.aio.ServicerContext,
        make_stream: Callable[[], AsyncIterator[StreamToken | Generation]],
        task: str,
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        """Validation errors surface on the first iteration, inside this handler."""
        try:
            async for item in make_stream():
                if isinstance(item, Generation):
                    _note(item)
                yield converters.stream_event(item, task)
        except Exception as error:
            await self._fail(context, error)

    async def Translate(self, request: pb.TranslateRequest, context: grpc.aio.ServicerContext):
        call = self._inference.translate(
            request.text,
            request.source_language,
            request.target_language,
            converters.options_from_pb(request.options),
            _deadline(context),
        )
        return await self._unary(context, call, "translate")

    async def Summarize(self, request: pb.SummarizeRequest, context: grpc.aio.ServicerContext):
        call = self._inference.summarize(
            request.text, converters.options_from_pb(request.options), _deadline(context)
        )
        return await self._unary(context, call, "summarize")

    async def Answer(self, request: pb.AnswerRequest, context: grpc.aio.ServicerContext):
        call = self._inference.answer(
            request.question,
            request.context,
            converters.options_from_pb(request.options),
            _deadline(context),
        )
        return await self._unary(context, call, "answer")

    def TranslateStream(self, request: pb.TranslateRequest, context: grpc.aio.ServicerContext):
        return self._streaming(
            context,
            lambda: self._inference.translate_stream(
                request.text,
                request.source_language,
                request.target_language,
                converters.options_from_pb(request.options),
                _deadline(context),
            ),
            "translate",
        )

    def SummarizeStream(self, request: pb.SummarizeRequest, context: grpc.aio.ServicerContext):
        return self._streaming(
            context,
            lambda: self._inference.summarize_stream(
                request.text,
                converters.options_from_pb(request.options),
                _deadline(context),
            ),
            "summarize",
        )

    def AnswerStream(self, request: pb.AnswerRequest, context: grpc.aio.ServicerContext):
        return self._streaming(
            context,
            lambda: self._inference.answer_stream(
                request.question,
                request.context,
                converters.options_from_pb(request.options),
                _deadline(context),
            ),
            "answer",
        )

    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext):
        table = self._inference.models
        models = [
            converters.model_info(m, m.version == table.default_version(m.name))
            for m in sorted(table.all(), key=lambda m: (m.name, m.version))
            if not request.task or m.bundle.manifest.task == request.task
        ]
        return pb.ListModelsResponse(models=models)
