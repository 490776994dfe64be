"""Protobuf <-> client dataclasses, shared by the sync and asyncio clients."""

from __future__ import annotations

from service.api.gen.seq2seq.v1 import seq2seq_pb2 as pb
from service.client.types import (
    AnswerResult,
    Attention,
    DecodeOptions,
    GenerateResult,
    Hypothesis,
    ModelInfo,
    ModelRef,
    Timing,
    TokenEvent,
)


def decoding_options(options: DecodeOptions | None) -> pb.DecodingOptions:
    o = options or DecodeOptions()
    return pb.DecodingOptions(
        model=o.model,
        model_version=o.model_version,
        beam_size=o.beam_size,
        n_best=o.n_best,
        max_output_tokens=o.max_output_tokens,
        length_penalty=o.length_penalty,
        return_attention=o.return_attention,
        return_scores=o.return_scores,
    )


def translate_request(
    text: str, target_language: str, source_language: str, options: DecodeOptions | None
) -> pb.TranslateRequest:
    return pb.TranslateRequest(
        text=text,
        source_language=source_language,
        target_language=target_language,
        options=decoding_options(options),
    )


def summarize_request(text: str, options: DecodeOptions | None) -> pb.SummarizeRequest:
    return pb.SummarizeRequest(text=text, options=decoding_options(options))


def answer_request(question: str, context: str, options: DecodeOptions | None) -> pb.AnswerRequest:
    return pb.AnswerRequest(question=question, context=context, options=decoding_options(options))


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


def generate_result(r: pb.GenerateResponse) -> GenerateResult:
    return GenerateResult(
        hypotheses=tuple(_hypothesis(h) for h in r.hypotheses),
        source_tokens=tuple(r.source_tokens),
        model=_model(r.model),
        timing=_timing(r.timing),
    )


def answer_result(r: pb.AnswerResponse) -> AnswerResult:
    return AnswerResult(
        answer=r.answer,
        answerable=r.answerable,
        hypotheses=tuple(_hypothesis(h) for h in r.hypotheses),
        source_tokens=tuple(r.source_tokens),
        model=_model(r.model),
        timing=_timing(r.timing),
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
        )
        for m in r.models
    ]
