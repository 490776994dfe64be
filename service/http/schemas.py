"""The JSON shapes of the /v1 API (they are its OpenAPI description), derived from the task
table and the decoding-parameters type: a new task or option needs no code here.

Ranges are not checked here: the front door (the options type, the request checks) refuses
a bad value with the same message every protocol gives.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from seq2seq_client.tasks import TASKS, TaskSpec
from service.params import OPTION_NAMES, DecodingParams
from service.serving.data_plane import Generation, ModelRef
from service.serving.documents import Translated
from service.serving.front_door import TaskAnswer
from service.serving.long_input import InputUsed
from service.serving.models import ModelListing

_STRICT = ConfigDict(extra="forbid")


def _json_type(hint: Any) -> Any:
    """The JSON form of a DecodingParams field: tuples of pairs are objects, tuples lists."""
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if typing.get_origin(item) is tuple:
            return dict[str, str]
        return list[item]  # type: ignore[valid-type]
    return hint


def _options_model() -> type[BaseModel]:
    """The gRPC DecodingOptions message field for field: the model it names, then every
    option of DecodingParams with its type and default."""
    hints = typing.get_type_hints(DecodingParams)
    defaults = {f.name: f.default for f in dataclasses.fields(DecodingParams)}
    fields: dict[str, Any] = {
        "model": (str, Field(default="", description="model name; empty = the task's default")),
        "model_version": (int, Field(default=0, description="0 = the newest loaded version")),
    }
    for name in OPTION_NAMES:
        default = defaults[name]
        fields[name] = (
            _json_type(hints[name]) | None,
            Field(default=list(default) if isinstance(default, tuple) else default),
        )
    return create_model("Options", __config__=_STRICT, **fields)


Options = _options_model()


def options_of(body: BaseModel) -> dict[str, object]:
    """A body's options as the front door takes them: only what the caller sent."""
    options: BaseModel = body.options  # type: ignore[attr-defined]
    return options.model_dump(exclude_unset=True)


def wants_details(options: dict[str, object]) -> bool:
    """Per-sentence hypotheses are returned when anything beyond the text is asked."""
    n_best = options.get("n_best") or 0
    return bool(options.get("return_attention") or options.get("return_scores")) or (
        isinstance(n_best, int) and n_best > 1
    )


class TranslateBody(BaseModel):
    model_config = _STRICT

    text: str | None = Field(default=None, description="one text (a document of any length)")
    texts: list[str] | None = Field(default=None, description="many texts; answers align")
    source_language: str = Field(default="en", description="ISO 639-1 code, or 'auto'")
    target_language: str = ""
    format: str = Field(default="text", description="'text' or 'html'")
    options: Options = Field(default_factory=Options)  # type: ignore[valid-type]


def _task_body(spec: TaskSpec) -> type[BaseModel]:
    """A task's request body: its fields (a missing text is refused by the front door, as
    over gRPC) and options."""
    fields: dict[str, Any] = {name: (str, "") for name in spec.fields}
    fields["options"] = (Options, Field(default_factory=Options))
    return create_model(f"{spec.rpc}Body", __config__=_STRICT, **fields)


TASK_BODIES: dict[str, type[BaseModel]] = {name: _task_body(spec) for name, spec in TASKS.items()}


class DetectBody(BaseModel):
    model_config = _STRICT

    text: str = ""
    top: int = Field(default=0, description="how many languages to rank; 0 = 3")


def model_json(ref: ModelRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"name": ref.name, "version": ref.version, "provider": ref.provider}


def generation_json(generation: Generation) -> dict[str, Any]:
    return {
        "hypotheses": [
            {
                "text": h.text,
                "score": h.score,
                "target_tokens": list(h.target_tokens),
                "token_scores": list(h.token_scores),
                "finish_reason": h.finish_reason,
                "attention": None if h.attention is None else h.attention.round(4).tolist(),
            }
            for h in generation.hypotheses
        ],
        "source_tokens": list(generation.source_tokens),
        "model": model_json(generation.model),
        "timing": {
            "queue_seconds": generation.queue_seconds,
            "compute_seconds": generation.compute_seconds,
            "total_seconds": generation.total_seconds,
        },
    }


def task_json(spec: TaskSpec, answer: TaskAnswer) -> dict[str, Any]:
    """A task's result: the answer first for answering tasks, what a long input used."""
    generation = answer.generation
    head: dict[str, Any] = {}
    if spec.answers:
        best = generation.hypotheses[0].text if generation.answerable else ""
        head = {"answer": best, "answerable": generation.answerable}
    return {**head, **generation_json(generation), "input_used": used_json(answer.used)}


def translated_json(result: Translated, details: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": result.text,
        "alternatives": list(result.alternatives),
        "sentences": result.sentences,
        "source_language": result.source_language,
        "model": model_json(result.model),
        "timing": {
            "queue_seconds": result.queue_seconds,
            "compute_seconds": result.compute_seconds,
        },
    }
    if result.detection is not None:
        body["detected_language"] = {
            "language": result.detection.language,
            "confidence": result.detection.confidence,
        }
    if details:
        body["parts"] = [
            {"source": source, **generation_json(generation)} for source, generation in result.parts
        ]
    return body


def used_json(used: InputUsed | None) -> dict[str, Any] | None:
    """What part of a long Summarize text or Answer context was read (None: all of it)."""
    return None if used is None else dataclasses.asdict(used)


def listing_json(listing: ModelListing) -> dict[str, Any]:
    """One served model; languages are null for a model that does not translate."""
    body = dataclasses.asdict(listing)
    for name in ("source_language", "target_language"):
        body[name] = body[name] or None
    return body
