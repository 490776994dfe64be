"""Protobuf messages <-> the engine's domain types; nothing else converts."""

from __future__ import annotations

from service.api.gen.seq2seq.v1 import seq2seq_pb2 as pb
from service.engine.inference import DecodingOptions, Generation, Hypothesis, StreamToken
from service.engine.models import ServedModel


def options_from_pb(message: pb.DecodingOptions) -> DecodingOptions:
    return DecodingOptions(
        model=message.model.strip(),
        model_version=message.model_version,
        beam_size=message.beam_size,
        n_best=message.n_best,
        max_output_tokens=message.max_output_tokens,
        length_penalty=message.length_penalty,
        return_attention=message.return_attention,
        return_scores=message.return_scores,
    )


def _hypothesis_pb(hypothesis: Hypothesis) -> pb.Hypothesis:
    message = pb.Hypothesis(
        text=hypothesis.text,
        score=hypothesis.score,
        target_tokens=hypothesis.target_tokens,
        token_scores=hypothesis.token_scores,
        finish_reason=hypothesis.finish_reason,
    )
    if hypothesis.attention is not None:
        rows, cols = hypothesis.attention.shape
        message.attention.rows = rows
        message.attention.cols = cols
        message.attention.weights.extend(hypothesis.attention.ravel().tolist())
    return message


def _model_pb(generation: Generation) -> pb.ModelRef:
    return pb.ModelRef(
        name=generation.model.name,
        version=generation.model.version,
        provider=generation.model.provider,
    )


def _timing_pb(generation: Generation) -> pb.Timing:
    return pb.Timing(
        queue_seconds=generation.queue_seconds,
        compute_seconds=generation.compute_seconds,
        total_seconds=generation.total_seconds,
    )


def generate_response(generation: Generation) -> pb.GenerateResponse:
    return pb.GenerateResponse(
        hypotheses=[_hypothesis_pb(h) for h in generation.hypotheses],
        source_tokens=generation.source_tokens,
        model=_model_pb(generation),
        timing=_timing_pb(generation),
    )


def answer_response(generation: Generation) -> pb.AnswerResponse:
    return pb.AnswerResponse(
        answer=generation.hypotheses[0].text if generation.answerable else "",
        answerable=generation.answerable,
        hypotheses=[_hypothesis_pb(h) for h in generation.hypotheses],
        source_tokens=generation.source_tokens,
        model=_model_pb(generation),
        timing=_timing_pb(generation),
    )


def stream_event(item: StreamToken | Generation, task: str) -> pb.GenerateStreamResponse:
    if isinstance(item, StreamToken):
        return pb.GenerateStreamResponse(
            token=pb.TokenEvent(
                index=item.index, token=item.token, text=item.text, log_prob=item.log_prob
            )
        )
    if task == "answer":
        return pb.GenerateStreamResponse(answer_result=answer_response(item))
    return pb.GenerateStreamResponse(result=generate_response(item))


def model_info(model: ServedModel, is_default: bool) -> pb.ModelInfo:
    manifest = model.bundle.manifest
    attention = manifest.attention
    scope = attention.scope if attention.window is None else f"local(D={attention.window})"
    evaluation = manifest.evaluation.metrics if manifest.evaluation is not None else {}
    return pb.ModelInfo(
        name=manifest.name,
        version=manifest.version,
        task=manifest.task,
        source_language=manifest.languages.source if manifest.languages else "",
        target_language=manifest.languages.target if manifest.languages else "",
        architecture=f"{manifest.architecture}-{manifest.cell}"
        if manifest.cell
        else manifest.architecture,
        attention=f"{attention.kind} {scope} {attention.score}",
        precision=manifest.precision,
        provider=model.bundle.runtime.provider,
        max_source_tokens=manifest.max_source_length,
        max_target_tokens=manifest.max_target_length,
        evaluation=evaluation,
        is_default_version=is_default,
    )
