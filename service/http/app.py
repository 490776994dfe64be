"""The FastAPI application: /v1 (our API), LibreTranslate's API, the page, health."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException

from seq2seq_client.tasks import TASKS
from service.errors import InvalidArgument, ServiceError
from service.http import errors
from service.http.context import HttpContext, bearer_token, context_of
from service.http.libretranslate import router as libretranslate_router
from service.http.middleware import FrontDoor
from service.http.schemas import (
    AnswerBody,
    DetectBody,
    SummarizeBody,
    TranslateBody,
    generation_json,
    translated_json,
    used_json,
)
from service.serving.documents import TranslateJob


class Unauthenticated(Exception):
    """No or an unknown bearer token while authentication is on."""


def authorized(request: Request) -> None:
    context = context_of(request)
    if context.tokens is None:
        return
    token = bearer_token(request)
    if token is None or not context.tokens.accepts(token):
        raise Unauthenticated()


def _deadline(request: Request) -> float | None:
    """`X-Request-Timeout: SECONDS` plays the part of a gRPC deadline."""
    value = request.headers.get("x-request-timeout")
    try:
        return time.monotonic() + float(value) if value else None
    except ValueError:
        return None


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
    app.add_exception_handler(
        Unauthenticated,
        lambda request, error: errors.plain_error(
            401, "send 'Authorization: Bearer <token>' with a known token", "unauthenticated"
        ),
    )
    api = [Depends(authorized)]

    @app.post("/v1/translate", dependencies=api, tags=["v1"])
    async def translate(body: TranslateBody, request: Request) -> JSONResponse:
        """One text (`text`) or many (`texts`); plain text or HTML; `source_language: auto`."""
        documents = context_of(request).documents
        job = TranslateJob(
            source_language=body.source_language,
            target_language=body.target_language,
            format=body.format,
            choice=body.options.choice(),
            params=body.options.params(),
            deadline=_deadline(request),
        )
        if (body.text is None) == (body.texts is None):
            raise InvalidArgument("send either 'text' or 'texts'", field="text")
        details = body.options.details
        if body.text is not None:
            result = await documents.translate(body.text, job)
            return JSONResponse(translated_json(result, details))
        results = await documents.translate_many(body.texts or [], job)
        return JSONResponse(
            {
                "results": [
                    {"error": errors.error_body(r)}
                    if isinstance(r, ServiceError)
                    else translated_json(r, details)
                    for r in results
                ]
            }
        )

    @app.post("/v1/summarize", dependencies=api, tags=["v1"])
    async def summarize(body: SummarizeBody, request: Request) -> JSONResponse:
        """A text longer than the model's limit is summarized from its leading sentences;
        `input_used` then says which characters were read."""
        context = context_of(request)
        choice = body.options.choice()
        fields, used = context.documents.fit("summarize", {"text": body.text}, choice)
        generation = await context.plane.generate(
            "summarize", fields, choice, body.options.params(), _deadline(request)
        )
        return JSONResponse({**generation_json(generation), "input_used": used_json(used)})

    @app.post("/v1/answer", dependencies=api, tags=["v1"])
    async def answer(body: AnswerBody, request: Request) -> JSONResponse:
        """A context longer than the model's limit is searched for the window of sentences
        sharing the most words with the question; `input_used` says which."""
        context = context_of(request)
        choice = body.options.choice()
        fields, used = context.documents.fit(
            "answer", {"question": body.question, "context": body.context}, choice
        )
        generation = await context.plane.generate(
            "answer", fields, choice, body.options.params(), _deadline(request)
        )
        best = generation.hypotheses[0].text if generation.answerable else ""
        return JSONResponse(
            {
                "answer": best,
                "answerable": generation.answerable,
                **generation_json(generation),
                "input_used": used_json(used),
            }
        )

    @app.post("/v1/detect", dependencies=api, tags=["v1"])
    async def detect(body: DetectBody, request: Request) -> JSONResponse:
        """The most likely languages among those the loaded translate models speak."""
        ranked = context_of(request).documents.detect(body.text)
        return JSONResponse(
            {"detections": [{"language": d.language, "confidence": d.confidence} for d in ranked]}
        )

    @app.get("/v1/models", dependencies=api, tags=["v1"])
    async def models(request: Request) -> JSONResponse:
        context = context_of(request)
        table = context.plane.models
        out = []
        for model in sorted(table.all(), key=lambda m: (m.name, m.version)):
            manifest = model.bundle.manifest
            languages = manifest.languages
            out.append(
                {
                    "name": model.name,
                    "version": model.version,
                    "task": manifest.task,
                    "source_language": languages.source if languages else None,
                    "target_language": languages.target if languages else None,
                    "is_default_version": model.version == table.default_version(model.name),
                    "has_attention": manifest.attention.kind != "none",
                    "provider": model.provider,
                }
            )
        return JSONResponse(
            {"models": out, "tasks": sorted(TASKS), "languages": context.documents.languages()}
        )

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> PlainTextResponse:
        context = context_of(request)
        models = context.plane.models.all()
        serving = not context.draining and any(m.engine.available for m in models)
        return PlainTextResponse(
            "SERVING" if serving else "NOT_SERVING", status_code=200 if serving else 503
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        text = resources.files("service.http").joinpath("static/index.html").read_text("utf-8")
        return HTMLResponse(text)

    app.include_router(libretranslate_router)
    return FrontDoor(app, context)
