"""LibreTranslate's API (/translate, /detect, /languages, /translate_file), so its clients
work unchanged: form or JSON bodies, `{"error": ...}` bodies, and confidences in percent.
Each route converts LibreTranslate's fields to a front-door call and back; its `api_key` is
checked with the server's bearer tokens by the HTTP middleware. Errors use our HTTP table.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from service.errors import InvalidArgument, ServiceError
from service.http.context import HttpContext, context_of
from service.http.errors import error_response, plain_error
from service.serving.documents import Translated
from service.serving.front_door import FieldNames, TranslateCall
from service.text.detect import Detection

router = APIRouter(tags=["LibreTranslate"])

LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "it": "Italian"}
FILE_FORMATS = {".txt": "text", ".html": "html", ".htm": "html"}
KEPT_FILES = 64  # translated files kept for /download_file, oldest dropped first
NAMES = FieldNames(text="q", texts="q", source_language="source", target_language="target")
_BODY_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        }
    }
}


class _UnsupportedMedia(Exception):
    def __init__(self, content_type: str) -> None:
        self.content_type = content_type


async def _fields(request: Request) -> dict[str, Any]:
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


Handler = Callable[[HttpContext, dict[str, Any], Request], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The request's fields parsed, then `handler`; a ServiceError becomes its JSON error
    (no functools.wraps: FastAPI must see `request` only)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(context_of(request), await _fields(request), request)
        except _UnsupportedMedia as error:
            return plain_error(415, f"unsupported content type '{error.content_type}'", "media")
        except ServiceError as error:
            return error_response(error)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _required(fields: dict[str, Any], name: str) -> str:
    """A parameter LibreTranslate requires, refused with its own words when missing."""
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"Invalid request: missing {name} parameter", field=name)
    return value


def _call(fields: dict[str, Any], text_format: str | None = None) -> TranslateCall:
    """LibreTranslate's fields as a Translate: `alternatives` asks for a beam that wide."""
    try:
        alternatives = int(fields.get("alternatives", 0))
    except (TypeError, ValueError) as error:
        raise InvalidArgument(
            f"alternatives must be an integer, not {fields.get('alternatives')!r}",
            field="alternatives",
        ) from error
    if alternatives < 0:
        raise InvalidArgument("alternatives must be >= 0", field="alternatives")
    q = fields.get("q")
    if isinstance(q, list) and not all(isinstance(t, str) for t in q):
        raise InvalidArgument("q must be a string or a list of strings", field="q")
    if not isinstance(q, list | str):
        raise InvalidArgument("Invalid request: missing q parameter", field="q")
    return TranslateCall(
        text=q if isinstance(q, str) else None,
        texts=q if isinstance(q, list) else None,
        source_language=str(fields.get("source") or "auto"),
        target_language=_required(fields, "target"),
        format=text_format or str(fields.get("format") or "text"),
        options={"beam_size": alternatives + 1, "n_best": alternatives + 1},
        names=NAMES,
    )


def _detected(detection: Detection | None) -> dict[str, Any] | None:
    if detection is None:
        return None
    return {"confidence": round(detection.confidence * 100, 1), "language": detection.language}


async def translate(context: HttpContext, fields: dict[str, Any], request: Request) -> Response:
    call = _call(fields)
    alternatives = int(str(call.options["n_best"])) > 1
    result = await context.front_door.translate(call)
    if isinstance(result, list):
        failed = next((r for r in result if isinstance(r, ServiceError)), None)
        if failed is not None:
            return error_response(failed)
        done = [r for r in result if isinstance(r, Translated)]
        body: dict[str, Any] = {"translatedText": [r.text for r in done]}
        if call.source_language == "auto":
            body["detectedLanguage"] = [_detected(r.detection) for r in done]
        if alternatives:
            body["alternatives"] = [list(r.alternatives) for r in done]
        return JSONResponse(body)
    body = {"translatedText": result.text}
    if result.detection is not None:
        body["detectedLanguage"] = _detected(result.detection)
    if alternatives:
        body["alternatives"] = list(result.alternatives)
    return JSONResponse(body)


async def detect(context: HttpContext, fields: dict[str, Any], request: Request) -> Response:
    ranked = context.front_door.detect(_required(fields, "q"), field="q")
    return JSONResponse([_detected(d) for d in ranked])


@router.get("/languages")
async def languages(request: Request) -> Response:
    front_door = context_of(request).front_door
    pairs = front_door.language_pairs()
    return JSONResponse(
        [
            {"code": code, "name": LANGUAGE_NAMES.get(code, code), "targets": pairs.get(code, [])}
            for code in front_door.languages()
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
    call = _call({**fields, "q": text}, FILE_FORMATS[suffix])
    result = await context.front_door.translate(
        dataclasses.replace(call, names=dataclasses.replace(NAMES, text="file"))
    )
    assert isinstance(result, Translated)
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
