"""The one table from our error codes to HTTP statuses, and the JSON error body.

Bodies look like `{"error": "...", "code": "invalid_argument", "field": "text"}`; the
`error` key is LibreTranslate's, so its clients show our messages.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.errors import ErrorCode, ServiceError

log = logging.getLogger(__name__)

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.OVERLOADED: 429,
    ErrorCode.EXPIRED: 504,
    ErrorCode.CANCELLED: 499,  # the client closed the request (nginx's convention)
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


def error_body(error: ServiceError) -> dict[str, str]:
    body = {"error": error.message, "code": error.code.value}
    if error.field:
        body["field"] = error.field
    return body


def error_response(error: ServiceError) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=HTTP_STATUS[error.code])


def plain_error(status: int, message: str, code: str, field: str | None = None) -> JSONResponse:
    """Errors that are HTTP's own (401, 403, 413, 415) rather than the front door's."""
    body = {"error": message, "code": code}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status)


async def on_service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return error_response(error)


async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
    """pydantic's 422 becomes our 400 naming the first bad field."""
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(location)
    message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    if first.get("type") == "json_invalid":
        context = first.get("ctx") or {}
        detail = context.get("error", "") if isinstance(context, dict) else ""
        message = f"the body is not valid JSON: {detail}".strip()
    return plain_error(400, message, "invalid_argument", field or None)


async def on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return plain_error(error.status_code, str(error.detail), "http")


async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return plain_error(500, "internal error; the server logged the details", "internal")
