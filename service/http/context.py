"""What the HTTP routes share: the front door, metrics, auth and LibreTranslate's downloads."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from service.auth import TokenChecker
from service.metrics import Metrics
from service.serving.front_door import FrontDoor


@dataclass
class HttpContext:
    front_door: FrontDoor
    metrics: Metrics
    tokens: TokenChecker | None  # None = authentication off
    max_body_bytes: int  # JSON and form bodies
    max_file_bytes: int  # /translate_file uploads
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # LibreTranslate downloads


def context_of(request: Request) -> HttpContext:
    context: HttpContext = request.app.state.context
    return context
