"""gRPC RED metrics for every RPC, in the go-grpc-prometheus convention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from service.metrics import Metrics


def _code_name(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return default.name


def _split(full_method: str) -> tuple[str, str]:
    """'/seq2seq.v1.Seq2Seq/Translate' -> ('seq2seq.v1.Seq2Seq', 'Translate')."""
    _, service, method = full_method.split("/", 2)
    return service, method


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        service, method = _split(handler_call_details.method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, "unary", service, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, "server_stream", service, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, "client_stream", service, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, "bidi_stream", service, method),
            handler.request_deserializer,
            handler.response_serializer,
        )

    def _labels(self, kind: str, service: str, method: str) -> tuple[str, str, str]:
        labels = (kind, service, method)
        self._metrics.grpc_started.labels(*labels).inc()
        return labels

    def _done(self, labels: tuple[str, str, str], code: str, started: float) -> None:
        self._metrics.grpc_handled.labels(*labels, code).inc()
        self._metrics.grpc_handling.labels(*labels).observe(time.perf_counter() - started)

    def _wrap_unary(self, behavior: Any, kind: str, service: str, method: str) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            labels = self._labels(kind, service, method)
            started = time.perf_counter()
            code = grpc.StatusCode.OK.name
            try:
                response = await behavior(request, context)
                code = _code_name(context, grpc.StatusCode.OK)
                return response
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED.name
                raise
            except BaseException:
                code = _code_name(context, grpc.StatusCode.UNKNOWN)
                raise
            finally:
                self._done(labels, code, started)

        return wrapped

    def _wrap_stream(self, behavior: Any, kind: str, service: str, method: str) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            labels = self._labels(kind, service, method)
            started = time.perf_counter()
            code = grpc.StatusCode.OK.name
            try:
                result = behavior(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    await result
                code = _code_name(context, grpc.StatusCode.OK)
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED.name
                raise
            except BaseException:
                code = _code_name(context, grpc.StatusCode.UNKNOWN)
                raise
            finally:
                self._done(labels, code, started)

        return wrapped
