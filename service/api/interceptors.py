"""The gRPC server's interceptors: one for every RPC (request id, gRPC RED metrics, one
access-log line), and bearer-token authentication inside it.

RED metrics follow the go-grpc-prometheus convention. The request id comes from the
incoming metadata key `x-request-id` (or is generated) and goes back to the client in
the response's initial metadata. The servicer adds what only it knows (model, version,
queue and compute time) to the call's `CallRecord` (`service.api.call_context`).

Authentication (`BearerAuthInterceptor`): a call must carry `authorization: Bearer <token>`
metadata naming a configured token, unless its service is exempt (health checks and
reflection by default); refused calls end UNAUTHENTICATED, and only the reason is logged. It
is registered after `CallInterceptor` (inside it), so refused calls are still counted in
`grpc_server_handled_total{grpc_code="UNAUTHENTICATED"}` and access-logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc

from service.api.call_context import CallRecord, set_current_call
from service.api.traffic import Traffic
from service.auth import TokenChecker, bearer_token
from service.metrics import Metrics

REQUEST_ID_KEY = "x-request-id"
AUTHORIZATION_KEY = "authorization"
ACCESS_LOGGER = "service.access"
# Services whose calls are logged at INFO; health checks and reflection go to DEBUG.
LOGGED_SERVICES = frozenset({"seq2seq.v1.Seq2Seq"})
_VALID_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces

access_log = logging.getLogger(ACCESS_LOGGER)
log = logging.getLogger(__name__)


def request_id_from(metadata: Any) -> str:
    """The caller's `x-request-id` when it is sane (printable, at most 128 chars), else new."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _VALID_REQUEST_ID.match(value):
            return value
    return uuid.uuid4().hex


def _code_name(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return default.name


def _split(full_method: str) -> tuple[str, str]:
    """'/seq2seq.v1.Seq2Seq/Translate' -> ('seq2seq.v1.Seq2Seq', 'Translate')."""
    _, service, method = full_method.split("/", 2)
    return service, method


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics, traffic: Traffic | None = None) -> None:
        self._metrics = metrics
        self._traffic = traffic or Traffic()  # calls in flight, for the drain

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

    def _begin(self, context: grpc.aio.ServicerContext, labels: tuple[str, str, str]) -> CallRecord:
        self._metrics.grpc_started.labels(*labels).inc()
        _, service, method = labels
        record = CallRecord(
            request_id=request_id_from(context.invocation_metadata()),
            rpc=method,
            service=service,
            peer=context.peer(),
            holds_drain=self._traffic.started(service, method),
        )
        set_current_call(record)
        return record

    def _done(
        self, labels: tuple[str, str, str], record: CallRecord, code: str, started: float
    ) -> None:
        seconds = time.perf_counter() - started
        if record.holds_drain:
            self._traffic.finished()
        self._metrics.grpc_handled.labels(*labels, code).inc()
        self._metrics.grpc_handling.labels(*labels).observe(seconds)
        self._metrics.requests.labels("grpc", labels[2], code).inc()
        self._metrics.request_seconds.labels("grpc", labels[2]).observe(seconds)
        level = logging.INFO if record.service in LOGGED_SERVICES else logging.DEBUG
        if not access_log.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "request_id": record.request_id,
            "rpc": record.rpc,
            "code": code,
            "total_seconds": round(seconds, 6),
            "peer": record.peer,
        }
        if record.model:
            fields.update(model=record.model, version=record.version)
        if record.queue_seconds is not None:
            fields["queue_seconds"] = round(record.queue_seconds, 6)
        if record.compute_seconds is not None:
            fields["compute_seconds"] = round(record.compute_seconds, 6)
        if record.error:
            fields["error"] = record.error
        access_log.log(level, "%s %s %.3fs", record.rpc, code, seconds, extra=fields)

    def _wrap_unary(self, behavior: Any, kind: str, service: str, method: str) -> Any:
        labels = (kind, service, method)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            record = self._begin(context, labels)
            code = grpc.StatusCode.OK.name
            try:
                await context.send_initial_metadata(((REQUEST_ID_KEY, record.request_id),))
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
                self._done(labels, record, code, started)

        return wrapped

    def _wrap_stream(self, behavior: Any, kind: str, service: str, method: str) -> Any:
        labels = (kind, service, method)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            record = self._begin(context, labels)
            code = grpc.StatusCode.OK.name
            try:
                await context.send_initial_metadata(((REQUEST_ID_KEY, record.request_id),))
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
                self._done(labels, record, code, started)

        return wrapped


# --- authentication ---------------------------------------------------------------------
def _presented_token(metadata: Any) -> str | None:
    """The token of the first `authorization` entry, None when absent or not a Bearer one."""
    for key, value in metadata or ():
        if key == AUTHORIZATION_KEY:
            return bearer_token(value)
    return None


def _service_of(full_method: str) -> str:
    """'/seq2seq.v1.Seq2Seq/Translate' -> 'seq2seq.v1.Seq2Seq'."""
    return full_method.lstrip("/").split("/", 1)[0]


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler` that ends the call UNAUTHENTICATED."""

    async def refuse_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - abort raised already; this makes it a generator

    serializers = (handler.request_deserializer, handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(refuse_unary, *serializers)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(refuse_stream, *serializers)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(refuse_unary, *serializers)
    return grpc.stream_stream_rpc_method_handler(refuse_stream, *serializers)


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for calls without an accepted bearer token (exempt services pass)."""

    def __init__(self, tokens: Iterable[str], exempt_services: Iterable[str]) -> None:
        self._checker = TokenChecker(tokens)
        self._exempt = frozenset(exempt_services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or _service_of(handler_call_details.method) in self._exempt:
            return handler
        presented = _presented_token(handler_call_details.invocation_metadata)
        if presented is None:
            reason = "missing 'authorization: Bearer <token>' metadata"
        elif not self._checker.accepts(presented):
            reason = "the bearer token is not accepted"
        else:
            return handler
        log.debug("refused %s: %s", handler_call_details.method, reason)
        return _refusal(handler, f"unauthenticated: {reason}")
