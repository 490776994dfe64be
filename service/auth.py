"""Bearer-token authentication: one aio server interceptor, constant-time comparison.

A call must carry `authorization: Bearer <token>` metadata naming one of the configured
tokens, unless its service is exempt (health checks and reflection by default). Refused
calls end UNAUTHENTICATED. Tokens never reach a log line: only the reason is logged.

The interceptor is registered after `CallInterceptor` (inside it), so refused calls are
still counted in `grpc_server_handled_total{grpc_code="UNAUTHENTICATED"}` and access-logged.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc

AUTHORIZATION_KEY = "authorization"
BEARER_PREFIX = "bearer "

log = logging.getLogger(__name__)


def _presented_token(metadata: Any) -> str | None:
    """The token of the first `authorization` entry, None when absent or not a Bearer one."""
    for key, value in metadata or ():
        if key != AUTHORIZATION_KEY:
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value[: len(BEARER_PREFIX)].lower() != BEARER_PREFIX:
            return None
        return value[len(BEARER_PREFIX) :].strip()
    return None


class TokenChecker:
    """Checks a presented token against every accepted one, in constant time per token."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(token.encode("utf-8") for token in tokens)
        if not self._tokens:
            raise ValueError("TokenChecker needs at least one token")

    def accepts(self, presented: str) -> bool:
        candidate = presented.encode("utf-8")
        matched = False
        for token in self._tokens:  # no early exit: the time does not tell which token
            matched |= hmac.compare_digest(candidate, token)
        return matched


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
