"""LibreTranslate's API (/translate, /detect, /languages, /translate_file), so its clients
work unchanged: form or JSON bodies, `api_key` in the body, `{"error": ...}` bodies, and
confidences in percent. Errors use our HTTP table, except a missing or unknown key, which is
LibreTranslate's 403.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from service.errors import InvalidArgument, ServiceError
from service.http.context import HttpContext, bearer_token, context_of
from service.http.errors import error_response, plain_error
from service.params import DecodingParams
from service.serving.documents import Translated, TranslateJob

router = APIRouter(tags=["LibreTranslate"])

LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "it": "Italian"}
FILE_FORMATS = {".txt": "text", ".html": "html", ".htm": "html"}
KEPT_FILES = 64  # translated files kept for /download_file, oldest dropped first
_BODY_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        }
    }
}


async def _params(request: Request) -> dict[str, Any]:
    """The request's fields from a JSON, urlencoded or multipart body (or the query)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, Any] = dict(request.query_params)
    if content_type == "application/json":
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as error:
            raise InvalidArgument(f"the body is not valid JSON: {error}", field="body") from error
        if not isinstance(body, dict):
            raise InvalidArgument("the JSON body must be an object", field="body")
        fields.update(body)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        fields.update({key: form.getlist(key)[-1] for key in form})
    elif content_type and request.method == "POST":
        raise _UnsupportedMedia(content_type)
    return fields


class _UnsupportedMedia(Exception):
    def __init__(self, content_type: str) -> None:
        self.content_type = content_type


def _refused(context: HttpContext, request: Request, fields: dict[str, Any]) -> Response | None:
    if context.tokens is None:
        return None
    key = str(fields.get("api_key") or "") or bearer_token(request) or ""
    if key and context.tokens.accepts(key):
        return None
    return plain_error(403, "Invalid API key", "unauthenticated")


async def _guarded(request: Request) -> tuple[HttpContext, dict[str, Any]] | Response:
    context = context_of(request)
    try:
        fields = await _params(request)
    except ServiceError as error:
        return error_response(error)
    except _UnsupportedMedia as error:
        return plain_error(415, f"unsupported content type '{error.content_type}'", "media")
    return _refused(context, request, fields) or (context, fields)


Handler = Callable[[HttpContext, dict[str, Any], Request], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The request's fields parsed and its key checked, then `handler`; a ServiceError
    becomes its JSON error (no functools.wraps: FastAPI must see `request` only)."""

    async def endpoint(request: Request) -> Response:
        guarded = await _guarded(request)
        if isinstance(guarded, Response):
            return guarded
        try:
            return await handler(*guarded, request)
        except ServiceError as error:
            return error_response(error)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _job(fields: dict[str, Any], fmt: str | None = None) -> TranslateJob:
    alternatives = _int(fields.get("alternatives", 0), "alternatives")
    if alternatives < 0:
        raise InvalidArgument("alternatives must be >= 0", field="alternatives")
    beam = alternatives + 1
    return TranslateJob(
        source_language=str(fields.get("source") or "auto"),
        target_language=_required(fields, "target"),
        format=fmt or str(fields.get("format") or "text"),
        params=DecodingParams(beam_size=beam, n_best=beam),
    )


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise InvalidArgument(f"{field} must be an integer, not {value!r}", field=field) from error


def _required(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"Invalid request: missing {name} parameter", field=name)
    return value


def _detected(result: Translated) -> dict[str, Any] | None:
    if result.detection is None:
        return None
    return {
        "confidence": round(result.detection.confidence * 100, 1),
        "language": result.detection.language,
    }


async def translate(context: HttpContext, fields: dict[str, Any], request: Request) -> Response:
    job = _job(fields)
    q = fields.get("q")
    if isinstance(q, list):
        if not all(isinstance(t, str) for t in q):
            raise InvalidArgument("q must be a string or a list of strings", field="q")
        results = await context.documents.translate_many(q, job, field="q")
        failed = next((r for r in results if isinstance(r, ServiceError)), None)
        if failed is not None:
            return error_response(failed)
        done = [r for r in results if isinstance(r, Translated)]
        body: dict[str, Any] = {"translatedText": [r.text for r in done]}
        if job.source_language == "auto":
            body["detectedLanguage"] = [_detected(r) for r in done]
        if job.params.n_best > 1:
            body["alternatives"] = [list(r.alternatives) for r in done]
        return JSONResponse(body)
    if not isinstance(q, str):
        raise InvalidArgument("Invalid request: missing q parameter", field="q")
    result = await context.documents.translate(q, job, field="q")
    body = {"translatedText": result.text}
    if result.detection is not None:
        body["detectedLanguage"] = _detected(result)
    if job.params.n_best > 1:
        body["alternatives"] = list(result.alternatives)
    return JSONResponse(body)


async def detect(context: HttpContext, fields: dict[str, Any], request: Request) -> Response:
    ranked = context.documents.detect(_required(fields, "q"), field="q")
    return JSONResponse(
        [{"confidence": round(d.confidence * 100, 1), "language": d.language} for d in ranked]
    )


@router.get("/languages")
async def languages(request: Request) -> Response:
    context = context_of(request)
    pairs = context.documents.language_pairs()
    return JSONResponse(
        [
            {
                "code": code,
                "name": LANGUAGE_NAMES.get(code, code),
                "targets": pairs.get(code, []),
            }
            for code in context.documents.languages()
        ]
    )


async def translate_file(
    context: HttpContext, fields: dict[str, Any], request: Request
) -> Response:
    upload = fields.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidArgument("Invalid request: missing file", field="file")
    name = PurePath(upload.filename or "file.txt").name
    suffix = PurePath(name).suffix.lower()
    if suffix not in FILE_FORMATS:
        return plain_error(
            415,
            f"files of type '{suffix or name}' are not supported; send {', '.join(FILE_FORMATS)}",
            "unsupported_media_type",
            "file",
        )
    data = await upload.read(context.max_file_bytes + 1)
    if len(data) > context.max_file_bytes:
        return plain_error(
            413, f"the file is over {context.max_file_bytes} bytes", "too_large", "file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidArgument("the file is not UTF-8 text", field="file") from error
    result = await context.documents.translate(text, _job(fields, FILE_FORMATS[suffix]), "file")
    key = f"{secrets.token_urlsafe(12)}.{result.source_language}-{fields['target']}{suffix}"
    context.files[key] = (name, result.text.encode("utf-8"))
    while len(context.files) > KEPT_FILES:
        context.files.pop(next(iter(context.files)))
    return JSONResponse({"translatedFileUrl": f"{request.base_url}download_file/{key}"})


router.post("/translate", openapi_extra=_BODY_DOC)(_endpoint(translate))
router.post("/detect", openapi_extra=_BODY_DOC)(_endpoint(detect))
router.post("/translate_file")(_endpoint(translate_file))


@router.get("/download_file/{key}")
async def download_file(key: str, request: Request) -> Response:
    stored = context_of(request).files.get(key)
    if stored is None:
        return plain_error(404, "no such file (translated files are kept for a while)", "gone")
    name, data = stored
    media = "text/html" if name.lower().endswith((".html", ".htm")) else "text/plain"
    return Response(
        data,
        media_type=f"{media}; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
