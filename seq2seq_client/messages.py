"""Protobuf <-> client dataclasses, shared by the sync and asyncio clients.

Requests and results are built from the task table (`seq2seq_client.tasks`): a task's request
message and fields by name, its response shape by `TaskSpec.answers`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.tasks import TaskSpec
from seq2seq_client.types import (
    AnswerResult,
    Attention,
    DecodeOptions,
    GenerateResult,
    Hypothesis,
    InputUsed,
    LanguageScore,
    ModelInfo,
    ModelRef,
    TextError,
    TextResult,
    Timing,
    TokenEvent,
)


def decoding_options(options: DecodeOptions | None) -> pb.DecodingOptions:
    """The DecodingOptions message, field by field from DecodeOptions' fields of the same
    name (None = not set; tuples of pairs fill a map)."""
    o = options or DecodeOptions()
    message = pb.DecodingOptions()
    for field in message.DESCRIPTOR.fields:
        value = getattr(o, field.name)
        if value is None:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(message, field.name).update(dict(value))
        elif field.is_repeated:
            getattr(message, field.name).extend(value)
        else:
            setattr(message, field.name, value)
    return message


def task_request(spec: TaskSpec, fields: Mapping[str, str], options: DecodeOptions | None) -> Any:
    """The task's request message with its fields by name (missing ones left empty)."""
    unknown = set(fields) - set(spec.fields)
    if unknown:
        raise TypeError(f"{spec.name} has no field(s) {sorted(unknown)}; it has {spec.fields}")
    message_type = getattr(pb, spec.request_message)
    return message_type(**fields, options=decoding_options(options))


def task_result(spec: TaskSpec) -> Callable[[Any], GenerateResult | AnswerResult]:
    """Converts the task's unary reply."""
    return answer_result if spec.answers else generate_result  # type: ignore[return-value]


def task_stream_event(
    spec: TaskSpec,
) -> Callable[[pb.GenerateStreamResponse], TokenEvent | GenerateResult | AnswerResult]:
    """Converts one message of the task's stream."""
    return answer_stream_event if spec.answers else generate_stream_event  # type: ignore[return-value]


def _hypothesis(h: pb.Hypothesis) -> Hypothesis:
    attention = None
    if h.attention.rows and h.attention.cols:
        attention = Attention(
            rows=h.attention.rows, cols=h.attention.cols, weights=tuple(h.attention.weights)
        )
    return Hypothesis(
        text=h.text,
        score=h.score,
        target_tokens=tuple(h.target_tokens),
        token_scores=tuple(h.token_scores),
        attention=attention,
        finish_reason=h.finish_reason,
    )


def _model(m: pb.ModelRef) -> ModelRef:
    return ModelRef(name=m.name, version=m.version, provider=m.provider)


def _timing(t: pb.Timing) -> Timing:
    return Timing(
        queue_seconds=t.queue_seconds,
        compute_seconds=t.compute_seconds,
        total_seconds=t.total_seconds,
    )


def _language(score: pb.LanguageScore) -> LanguageScore:
    return LanguageScore(language=score.language, confidence=round(score.confidence, 4))


def _used(used: pb.InputUsed) -> InputUsed:
    return InputUsed(
        field=used.field, method=used.method, start=used.start, end=used.end, total=used.total
    )


def generate_result(r: pb.GenerateResponse) -> GenerateResult:
    return GenerateResult(
        hypotheses=tuple(_hypothesis(h) for h in r.hypotheses),
        source_tokens=tuple(r.source_tokens),
        model=_model(r.model),
        timing=_timing(r.timing),
        sentence_count=r.sentence_count,
        detected_language=_language(r.detected_language)
        if r.HasField("detected_language")
        else None,
        input_used=_used(r.input_used) if r.HasField("input_used") else None,
    )


def translate_request(
    text: str | list[str],
    target_language: str,
    source_language: str,
    text_format: str,
    options: DecodeOptions | None,
) -> pb.TranslateRequest:
    """One text (a sentence or a whole document) or many texts in one Translate."""
    return pb.TranslateRequest(
        text=text if isinstance(text, str) else "",
        texts=[] if isinstance(text, str) else text,
        target_language=target_language,
        source_language=source_language,
        format=text_format,
        options=decoding_options(options),
    )


def text_results(r: pb.GenerateResponse) -> list[TextResult]:
    return [
        TextResult(
            text=t.text,
            alternatives=tuple(t.alternatives),
            sentence_count=t.sentence_count,
            source_language=t.source_language,
            detected_language=_language(t.detected_language)
            if t.HasField("detected_language")
            else None,
            error=TextError(code=t.error.code, message=t.error.message, field=t.error.field)
            if t.HasField("error")
            else None,
        )
        for t in r.results
    ]


def language_scores(r: pb.DetectResponse) -> list[LanguageScore]:
    return [_language(score) for score in r.languages]


def answer_result(r: pb.AnswerResponse) -> AnswerResult:
    return AnswerResult(
        answer=r.answer,
        answerable=r.answerable,
        hypotheses=tuple(_hypothesis(h) for h in r.hypotheses),
        source_tokens=tuple(r.source_tokens),
        model=_model(r.model),
        timing=_timing(r.timing),
        input_used=_used(r.input_used) if r.HasField("input_used") else None,
    )


def _token_event(t: pb.TokenEvent) -> TokenEvent:
    return TokenEvent(index=t.index, token=t.token, text=t.text, log_prob=t.log_prob)


def generate_stream_event(event: pb.GenerateStreamResponse) -> TokenEvent | GenerateResult:
    """A TranslateStream / SummarizeStream message: a token, or the final result."""
    kind = event.WhichOneof("event")
    if kind == "token":
        return _token_event(event.token)
    if kind == "result":
        return generate_result(event.result)
    raise ValueError(f"unexpected stream event {kind!r}")


def answer_stream_event(event: pb.GenerateStreamResponse) -> TokenEvent | AnswerResult:
    """An AnswerStream message: a token, or the final answer."""
    kind = event.WhichOneof("event")
    if kind == "token":
        return _token_event(event.token)
    if kind == "answer_result":
        return answer_result(event.answer_result)
    raise ValueError(f"unexpected stream event {kind!r}")


def model_infos(r: pb.ListModelsResponse) -> list[ModelInfo]:
    return [
        ModelInfo(
            name=m.name,
            version=m.version,
            task=m.task,
            source_language=m.source_language,
            target_language=m.target_language,
            architecture=m.architecture,
            attention=m.attention,
            precision=m.precision,
            provider=m.provider,
            max_source_tokens=m.max_source_tokens,
            max_target_tokens=m.max_target_tokens,
            evaluation=dict(m.evaluation),
            is_default_version=m.is_default_version,
            description=m.description,
        )
        for m in r.models
    ]
