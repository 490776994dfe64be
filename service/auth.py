"""Bearer-token authentication, the same for every protocol: one token check, constant-time
comparison, tokens never logged.

Each protocol checks a call once, before its body is read: gRPC in an aio server
interceptor (api/interceptors.py, the `authorization` metadata), HTTP in its ASGI middleware
(http/middleware.py, the `Authorization` header, or LibreTranslate's `api_key`).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

BEARER_PREFIX = "bearer "


def bearer_token(value: str | bytes | None) -> str | None:
    """The token of an `authorization` value, None when absent or not a Bearer one."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value[: len(BEARER_PREFIX)].lower() != BEARER_PREFIX:
        return None
    return value[len(BEARER_PREFIX) :].strip()


class TokenChecker:
    """Checks a presented token against every accepted one, in constant time per token."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(token.encode("utf-8") for token in tokens)
        if not self._tokens:
            raise ValueError("TokenChecker needs at least one token")

    def accepts(self, presented: str | None) -> bool:
        if presented is None:
            return False
        candidate = presented.encode("utf-8")
        matched = False
        for token in self._tokens:  # no early exit: the time does not tell which token
            matched |= hmac.compare_digest(candidate, token)
        return matched
