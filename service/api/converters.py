"""Protobuf messages <-> the data plane's domain types; nothing else converts.

Request fields are read by name from the task table, so a new task needs no code here.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from service.api.gen.seq2seq.v1 import seq2seq_pb2 as pb
from service.api.status import GRPC_CODES
from service.engine.params import DecodingParams
from service.engine.text import TextHypothesis
from service.errors import ServiceError
from service.serving.data_plane import Generation, ModelChoice, StreamToken
from service.serving.documents import Translated
from service.serving.long_input import InputUsed
from service.serving.models import ServedModel
from service.tasks import TaskSpec
from service.text.detect import Detection


def fields_from_pb(spec: TaskSpec, request: Message) -> dict[str, str]:
    return {name: getattr(request, name) for name in spec.fields}


def choice_from_pb(message: pb.DecodingOptions) -> ModelChoice:
    return ModelChoice(name=message.model.strip(), version=message.model_version)


def params_from_pb(message: pb.DecodingOptions) -> DecodingParams:
    """Raises InvalidArgument naming the field for out-of-range values."""
    return DecodingParams(
        beam_size=message.beam_size,
        n_best=message.n_best,
        max_output_tokens=message.max_output_tokens,
        min_output_tokens=message.min_output_tokens,
        length_penalty=message.length_penalty,
        temperature=message.temperature if message.HasField("temperature") else None,
        top_k=message.top_k,
        top_p=message.top_p if message.HasField("top_p") else None,
        seed=message.seed if message.HasField("seed") else None,
        return_attention=message.return_attention,
        return_scores=message.return_scores,
        extractive=message.extractive if message.HasField("extractive") else None,
        target_prefix=message.target_prefix,
        protected_terms=tuple(message.protected_terms),
        glossary=tuple(sorted(message.glossary.items())),
        shortlist=message.shortlist if message.HasField("shortlist") else None,
    )


def _hypothesis_pb(hypothesis: TextHypothesis) -> pb.Hypothesis:
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


def _common(generation: Generation) -> dict[str, Any]:
    """The fields GenerateResponse and AnswerResponse share."""
    return {
        "hypotheses": [_hypothesis_pb(h) for h in generation.hypotheses],
        "source_tokens": generation.source_tokens,
        "model": pb.ModelRef(
            name=generation.model.name,
            version=generation.model.version,
            provider=generation.model.provider,
        ),
        "timing": pb.Timing(
            queue_seconds=generation.queue_seconds,
            compute_seconds=generation.compute_seconds,
            total_seconds=generation.total_seconds,
        ),
    }


def response(
    spec: TaskSpec, generation: Generation, used: InputUsed | None = None
) -> pb.GenerateResponse | pb.AnswerResponse:
    extra = {} if used is None else {"input_used": input_used(used)}
    if spec.answers:
        return pb.AnswerResponse(
            answer=generation.hypotheses[0].text if generation.answerable else "",
            answerable=generation.answerable,
            **_common(generation),
            **extra,
        )
    return pb.GenerateResponse(**_common(generation), **extra)


def input_used(used: InputUsed) -> pb.InputUsed:
    return pb.InputUsed(
        field=used.field, method=used.method, start=used.start, end=used.end, total=used.total
    )


def stream_event(
    spec: TaskSpec, item: StreamToken | Generation, used: InputUsed | None = None
) -> pb.GenerateStreamResponse:
    if isinstance(item, StreamToken):
        return pb.GenerateStreamResponse(
            token=pb.TokenEvent(
                index=item.index, token=item.token, text=item.text, log_prob=item.log_prob
            )
        )
    if spec.answers:
        return pb.GenerateStreamResponse(answer_result=response(spec, item, used))
    return pb.GenerateStreamResponse(result=response(spec, item, used))


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
        provider=model.provider,
        max_source_tokens=manifest.max_source_length,
        max_target_tokens=manifest.max_target_length,
        evaluation=evaluation,
        is_default_version=is_default,
    )


def language_score(detection: Detection | None) -> pb.LanguageScore | None:
    if detection is None:
        return None
    return pb.LanguageScore(language=detection.language, confidence=detection.confidence)


def text_result(result: Translated | ServiceError, field: str) -> pb.TextResult:
    """One text of a many-texts Translate, or its error in its place."""
    if isinstance(result, ServiceError):
        return pb.TextResult(
            error=pb.TextError(
                code=GRPC_CODES[result.code].name,
                message=result.message,
                field=result.field or field,
            )
        )
    return pb.TextResult(
        text=result.text,
        alternatives=result.alternatives,
        sentence_count=result.sentences,
        source_language=result.source_language,
        detected_language=language_score(result.detection),
    )


def document_response(result: Translated) -> pb.GenerateResponse:
    """A translated document: one sentence answers as before, several as the whole text."""
    if result.single_sentence:
        response = pb.GenerateResponse(**_common(result.parts[0][1]))
    else:
        reasons = {g.hypotheses[0].finish_reason for _, g in result.parts}
        finish = "length" if "length" in reasons else "eos" if reasons else ""
        response = pb.GenerateResponse(
            hypotheses=[
                pb.Hypothesis(text=t, finish_reason=finish)
                for t in (result.text, *result.alternatives)
            ],
            timing=pb.Timing(
                queue_seconds=result.queue_seconds, compute_seconds=result.compute_seconds
            ),
        )
        if result.model is not None:
            response.model.CopyFrom(
                pb.ModelRef(
                    name=result.model.name,
                    version=result.model.version,
                    provider=result.model.provider,
                )
            )
    response.sentence_count = result.sentences
    if result.detection is not None:
        response.detected_language.CopyFrom(language_score(result.detection))
    return response
