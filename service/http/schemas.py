"""The JSON shapes of the /v1 API (they are its OpenAPI description)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.params import DecodingParams
from service.serving.data_plane import Generation, ModelChoice
from service.serving.documents import Translated
from service.serving.long_input import InputUsed


class Options(BaseModel):
    """Decoding options; the gRPC DecodingOptions message field for field."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="", description="model name; empty = the task's default")
    model_version: int = Field(default=0, ge=0, description="0 = the newest loaded version")
    beam_size: int = Field(default=0, ge=0, description="0 or 1 = greedy")
    n_best: int = Field(default=0, ge=0, description="hypotheses to return; <= beam_size")
    max_output_tokens: int = Field(default=0, ge=0, description="0 = the model's limit")
    min_output_tokens: int = Field(default=0, ge=0)
    length_penalty: float = Field(default=0.0, description="GNMT alpha; 0 = none")
    temperature: float | None = Field(default=None, description="sampling temperature > 0")
    top_k: int = Field(default=0, ge=0)
    top_p: float | None = None
    seed: int | None = None
    return_attention: bool = False
    return_scores: bool = False

    def choice(self) -> ModelChoice:
        return ModelChoice(name=self.model.strip(), version=self.model_version)

    def params(self) -> DecodingParams:
        """Raises InvalidArgument naming the field for out-of-range values."""
        fields = self.model_dump(exclude={"model", "model_version"})
        return DecodingParams(**fields)

    @property
    def details(self) -> bool:
        """Per-sentence hypotheses are returned when anything beyond the text is asked."""
        return self.return_attention or self.return_scores or self.n_best > 1


class TranslateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, description="one text (a document of any length)")
    texts: list[str] | None = Field(default=None, description="many texts; answers align")
    source_language: str = Field(default="en", description="ISO 639-1 code, or 'auto'")
    target_language: str = ""
    format: str = Field(default="text", description="'text' or 'html'")
    options: Options = Field(default_factory=Options)


class SummarizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    options: Options = Field(default_factory=Options)


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str
    context: str
    options: Options = Field(default_factory=Options)


class DetectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str


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
        "model": model_json(generation),
        "timing": {
            "queue_seconds": generation.queue_seconds,
            "compute_seconds": generation.compute_seconds,
            "total_seconds": generation.total_seconds,
        },
    }


def model_json(generation: Generation) -> dict[str, Any]:
    ref = generation.model
    return {"name": ref.name, "version": ref.version, "provider": ref.provider}


def translated_json(result: Translated, details: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": result.text,
        "alternatives": list(result.alternatives),
        "sentences": result.sentences,
        "source_language": result.source_language,
        "model": None
        if result.model is None
        else {
            "name": result.model.name,
            "version": result.model.version,
            "provider": result.model.provider,
        },
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
    if used is None:
        return None
    return {
        "field": used.field,
        "method": used.method,
        "start": used.start,
        "end": used.end,
        "total": used.total,
    }
