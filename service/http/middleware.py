"""One pure ASGI middleware: drain, body size and content type checks, then RED metrics.

Pure ASGI (not BaseHTTPMiddleware) because it sits on every request's path and the HTTP
front end is benchmarked against gRPC at the same concurrency.
"""

from __future__ import annotations

import json
import time
from typing import Any

from service.http.context import HttpContext

Scope = dict[str, Any]

JSON_ROUTES = "/v1/"  # our API takes application/json only
EXEMPT_FROM_DRAIN = ("/healthz",)


class FrontDoor:
    def __init__(self, app: Any, context: HttpContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_note(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        refusal = self._refusal(scope)
        try:
            if refusal is not None:
                await _discard_body(receive)  # so the client reads our answer, not a reset
                await _send_json(send_and_note, *refusal)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            method = getattr(route, "path", None) or "unmatched"
            seconds = time.perf_counter() - started
            metrics = self.context.metrics
            metrics.requests.labels("http", method, str(status["code"])).inc()
            metrics.request_seconds.labels("http", method).observe(seconds)

    def _refusal(self, scope: Scope) -> tuple[int, dict[str, str]] | None:
        path: str = scope["path"]
        if self.context.draining and path not in EXEMPT_FROM_DRAIN:
            return 503, {"error": "the server is draining; retry elsewhere", "code": "unavailable"}
        if scope["method"] != "POST":
            return None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.context.max_body_bytes
        if path.rstrip("/").endswith("translate_file"):
            limit = self.context.max_file_bytes + 65_536  # the file plus the form's fields
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return 413, {
                "error": f"the body has {length} bytes; the limit is {limit}",
                "code": "too_large",
            }
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if path.startswith(JSON_ROUTES) and content_type != "application/json":
            return 415, {
                "error": f"send application/json, not '{content_type or 'nothing'}'",
                "code": "unsupported_media_type",
            }
        return None


async def _discard_body(receive: Any, most: int = 64 * 1024 * 1024) -> None:
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
