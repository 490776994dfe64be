"""One pure ASGI middleware in front of every HTTP route: drain, authentication, body size
and content type, then RED metrics.

Authentication is here, once for the whole HTTP port, before any route reads a body: /v1
wants `Authorization: Bearer <token>` (401 otherwise); LibreTranslate's keyed routes take the
same tokens as `api_key` (the header, the query string, or the form or JSON body, as its
clients send it: such a body is read here, bounded by the size limit, and handed on to the
route unchanged) and answer LibreTranslate's 403. Pure ASGI (not BaseHTTPMiddleware)
because it sits on every request's path and the HTTP front end is benchmarked against gRPC
at the same concurrency.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.routing import Match

from service.auth import bearer_token
from service.http.context import HttpContext

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]

JSON_ROUTES = "/v1/"  # our API: bearer tokens, application/json only
KEYED_ROUTES = frozenset({"/translate", "/detect", "/translate_file"})  # LibreTranslate's
EXEMPT_FROM_DRAIN = ("/healthz",)
FILE_FORM_BYTES = 65_536  # /translate_file: what the form's other fields may add to the file


class Refusal(Exception):
    def __init__(self, status: int, message: str, code: str, *, body_read: bool = False) -> None:
        self.status = status
        self.body = {"error": message, "code": code}
        self.body_read = body_read  # the request's body was read to its end already


class HttpGate:
    def __init__(self, app: Any, context: HttpContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            try:
                receive = await self._admit(scope, receive)
            except Refusal as refusal:
                if not refusal.body_read:
                    await _discard_body(receive)  # so the client reads our answer, not a reset
                await _send_json(send_and_note, refusal.status, refusal.body)
                scope.setdefault("route", self._route(scope))
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            method = getattr(route, "path", None) or "unmatched"
            seconds = time.perf_counter() - started
            metrics = self.context.metrics
            metrics.requests.labels("http", method, str(status["code"])).inc()
            metrics.request_seconds.labels("http", method).observe(seconds)

    async def _admit(self, scope: Scope, receive: Receive) -> Receive:
        """The request's `receive` once it may go on (a replay when its body was read for a
        key); raises Refusal otherwise."""
        path: str = scope["path"]
        if self.context.front_door.draining and path not in EXEMPT_FROM_DRAIN:
            raise Refusal(503, "the server is draining; retry elsewhere", "unavailable")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.context.max_body_bytes
        if path.rstrip("/").endswith("translate_file"):
            limit = self.context.max_file_bytes + FILE_FORM_BYTES
        length = headers.get("content-length", "")
        if scope["method"] == "POST" and length.isdigit() and int(length) > limit:
            raise Refusal(413, f"the body has {length} bytes; the limit is {limit}", "too_large")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if (
            scope["method"] == "POST"
            and path.startswith(JSON_ROUTES)
            and content_type != "application/json"
        ):
            raise Refusal(
                415,
                f"send application/json, not '{content_type or 'nothing'}'",
                "unsupported_media_type",
            )
        return await self._authenticate(scope, receive, headers, limit)

    async def _authenticate(
        self, scope: Scope, receive: Receive, headers: dict[str, str], limit: int
    ) -> Receive:
        tokens = self.context.tokens
        path: str = scope["path"]
        if tokens is None:
            return receive
        presented = bearer_token(headers.get("authorization"))
        if path.startswith(JSON_ROUTES):
            if not tokens.accepts(presented):
                raise Refusal(
                    401,
                    "send 'Authorization: Bearer <token>' with a known token",
                    "unauthenticated",
                )
            return receive
        if path not in KEYED_ROUTES or scope["method"] != "POST":
            return receive
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        key = (query.get("api_key") or [""])[-1] or presented
        if tokens.accepts(key):
            return receive
        body = await _read_body(receive, limit)
        replay = _replay(body)
        if not tokens.accepts(await _body_key(scope, body) or None):
            raise Refusal(403, "Invalid API key", "unauthenticated", body_read=True)
        return replay

    def _route(self, scope: Scope) -> Any:
        """The route a refused request was for (its metrics label), None if none."""
        for route in getattr(self.app, "routes", ()):
            if route.matches(scope)[0] == Match.FULL:
                return route
        return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"the body is over {limit} bytes", "too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """A `receive` that gives `body` once, then waits for the client to go away."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _body_key(scope: Scope, body: bytes) -> str:
    """LibreTranslate's `api_key` field of a JSON, urlencoded or multipart body ("" if none)."""
    request = Request(scope, receive=_replay(body))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            fields = json.loads(body or b"{}")
            return str(fields.get("api_key") or "") if isinstance(fields, dict) else ""
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            async with request.form() as form:
                value = form.get("api_key")
                return value if isinstance(value, str) else ""
    except Exception:  # a body that does not parse has no key; the route would refuse it too
        return ""
    return ""


async def _discard_body(receive: Receive, most: int = 64 * 1024 * 1024) -> None:
    """Read and drop the request body (up to `most` bytes) before answering early."""
    seen = 0
    while seen <= most:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_json(send: Any, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
