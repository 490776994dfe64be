"""What the HTTP routes share: the data plane, documents, metrics, auth and the drain flag."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from service.auth import TokenChecker
from service.metrics import Metrics
from service.serving.data_plane import DataPlane
from service.serving.documents import Documents


@dataclass
class HttpContext:
    plane: DataPlane
    documents: Documents
    metrics: Metrics
    tokens: TokenChecker | None  # None = authentication off
    max_body_bytes: int  # JSON and form bodies
    max_file_bytes: int  # /translate_file uploads
    draining: bool = False  # set by the server on SIGTERM: new requests get 503
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # LibreTranslate downloads


def context_of(request: Request) -> HttpContext:
    context: HttpContext = request.app.state.context
    return context


def bearer_token(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    if value[:7].lower() != "bearer ":
        return None
    return value[7:].strip()
