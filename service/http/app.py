"""The FastAPI application: /v1 (our API), LibreTranslate's API, the page, health.

Every route converts JSON to a front-door call and its result back to JSON; the task routes
(`/v1/<task>`) are generated from the task table, their bodies and options from the task
table and the decoding-parameters type (schemas.py). Authentication, drain and body limits
are the middleware's (middleware.py), before any route runs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from seq2seq_client.tasks import TASKS, TaskSpec
from service.errors import ServiceError
from service.http import errors
from service.http.context import HttpContext, context_of
from service.http.libretranslate import router as libretranslate_router
from service.http.middleware import HttpGate
from service.http.schemas import (
    TASK_BODIES,
    DetectBody,
    TranslateBody,
    listing_json,
    options_of,
    task_json,
    translated_json,
    wants_details,
)
from service.serving.front_door import TranslateCall


def _deadline(request: Request) -> float | None:
    """`X-Request-Timeout: SECONDS` plays the part of a gRPC deadline."""
    value = request.headers.get("x-request-timeout")
    try:
        return time.monotonic() + float(value) if value else None
    except ValueError:
        return None


def _task_route(spec: TaskSpec) -> Callable[..., Awaitable[JSONResponse]]:
    """POST /v1/<task>: the task's fields and options in, its result out."""
    body_type = TASK_BODIES[spec.name]

    async def route(body: BaseModel, request: Request) -> JSONResponse:
        answer = await context_of(request).front_door.run(
            spec.name,
            {name: getattr(body, name) for name in spec.fields},
            options_of(body),
            _deadline(request),
        )
        return JSONResponse(task_json(spec, answer))

    route.__annotations__["body"] = body_type
    route.__name__ = spec.name
    route.__doc__ = f"{spec.description[0].upper()}{spec.description[1:]}." + (
        " A long input is cut to the part the model takes; `input_used` says which."
        if not spec.language_fields
        else ""
    )
    return route


def create_app(context: HttpContext) -> Any:
    app = FastAPI(
        docs_url=None,  # FastAPI's /docs and /redoc load their scripts from a CDN; the
        redoc_url=None,  # description itself is /openapi.json, served from here
        title="seq2seq-serve HTTP API",
        version="1",
        description="Translate (documents, many texts, HTML, auto-detected source), "
        "Summarize, Answer and Detect over the same engine as the gRPC API; "
        "LibreTranslate-compatible /translate, /languages, /detect and /translate_file.",
    )
    app.state.context = context
    app.add_exception_handler(ServiceError, errors.on_service_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(HTTPException, errors.on_http_error)
    app.add_exception_handler(Exception, errors.on_unexpected)

    @app.post("/v1/translate", tags=["v1"])
    async def translate(body: TranslateBody, request: Request) -> JSONResponse:
        """One text (`text`) or many (`texts`); plain text or HTML; `source_language: auto`."""
        options = options_of(body)
        result = await context_of(request).front_door.translate(
            TranslateCall(
                text=body.text,
                texts=body.texts,
                source_language=body.source_language,
                target_language=body.target_language,
                format=body.format,
                options=options,
                deadline=_deadline(request),
            )
        )
        details = wants_details(options)
        if not isinstance(result, list):
            return JSONResponse(translated_json(result, details))
        return JSONResponse(
            {
                "results": [
                    {"error": errors.error_body(r)}
                    if isinstance(r, ServiceError)
                    else translated_json(r, details)
                    for r in result
                ]
            }
        )

    for spec in TASKS.values():
        if spec.name != "translate":  # translate: documents and many texts, above
            app.post(f"/v1/{spec.name}", tags=["v1"])(_task_route(spec))

    @app.post("/v1/detect", tags=["v1"])
    async def detect(body: DetectBody, request: Request) -> JSONResponse:
        """The most likely languages among those the loaded translate models speak."""
        ranked = context_of(request).front_door.detect(body.text, body.top)
        return JSONResponse(
            {"detections": [{"language": d.language, "confidence": d.confidence} for d in ranked]}
        )

    @app.get("/v1/models", tags=["v1"])
    async def models(request: Request) -> JSONResponse:
        front_door = context_of(request).front_door
        return JSONResponse(
            {
                "models": [listing_json(m) for m in front_door.models()],
                "tasks": sorted(TASKS),
                "languages": front_door.languages(),
            }
        )

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> PlainTextResponse:
        serving = context_of(request).front_door.health().serving
        return PlainTextResponse(
            "SERVING" if serving else "NOT_SERVING", status_code=200 if serving else 503
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        text = resources.files("service.http").joinpath("static/index.html").read_text("utf-8")
        return HTMLResponse(text)

    app.include_router(libretranslate_router)
    return HttpGate(app, context)
