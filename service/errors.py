"""One error type for the whole service, with a transport-neutral code.

The engine raises these; only `service.api.status` knows how a code becomes a gRPC status.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    INVALID_ARGUMENT = "invalid_argument"  # the request itself is wrong
    NOT_FOUND = "not_found"  # no such model, version or language pair
    OVERLOADED = "overloaded"  # queue full: shed load, try later or elsewhere
    EXPIRED = "expired"  # the deadline passed before the work finished
    CANCELLED = "cancelled"  # the client went away
    UNAVAILABLE = "unavailable"  # draining or the runtime is down
    INTERNAL = "internal"  # a bug or a failed model run


class ServiceError(Exception):
    """A failure a caller can act on; `field` names the offending request field if any."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(ServiceError):
    code = ErrorCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    code = ErrorCode.NOT_FOUND


class Overloaded(ServiceError):
    code = ErrorCode.OVERLOADED


class Expired(ServiceError):
    code = ErrorCode.EXPIRED


class Cancelled(ServiceError):
    code = ErrorCode.CANCELLED


class Unavailable(ServiceError):
    code = ErrorCode.UNAVAILABLE


class InternalError(ServiceError):
    code = ErrorCode.INTERNAL
