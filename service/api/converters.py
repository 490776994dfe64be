"""Protobuf messages <-> the front door's calls and results; nothing else converts.

Request fields and decoding options are read by name (the task table's fields, the
DecodingOptions message's fields), so a new task or option needs no code here.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.tasks import TaskSpec
from service.api.status import GRPC_CODES
from service.engine.output_text import TextHypothesis
from service.errors import ServiceError
from service.serving.data_plane import Generation, ModelRef, StreamToken
from service.serving.documents import Translated
from service.serving.front_door import TaskAnswer
from service.serving.long_input import InputUsed
from service.serving.models import ModelListing
from service.text.detect import Detection


def fields_from_pb(spec: TaskSpec, request: Message) -> dict[str, str]:
    return {name: getattr(request, name) for name in spec.fields}


def options_from_pb(message: Message) -> dict[str, object]:
    """DecodingOptions by field name: unset optional fields left out, repeated fields as
    lists, maps as dicts (what the front door takes from every protocol)."""
    values: dict[str, object] = {}
    for field in message.DESCRIPTOR.fields:
        if field.has_presence and not message.HasField(field.name):
            continue
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = dict(value)
        elif field.is_repeated:
            value = list(value)
        values[field.name] = value
    return values


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


def _model_ref(ref: ModelRef) -> pb.ModelRef:
    return pb.ModelRef(name=ref.name, version=ref.version, provider=ref.provider)


def _common(generation: Generation) -> dict[str, Any]:
    """The fields GenerateResponse and AnswerResponse share."""
    return {
        "hypotheses": [_hypothesis_pb(h) for h in generation.hypotheses],
        "source_tokens": generation.source_tokens,
        "model": _model_ref(generation.model),
        "timing": pb.Timing(
            queue_seconds=generation.queue_seconds,
            compute_seconds=generation.compute_seconds,
            total_seconds=generation.total_seconds,
        ),
    }


def response(spec: TaskSpec, answer: TaskAnswer) -> pb.GenerateResponse | pb.AnswerResponse:
    generation = answer.generation
    extra = {} if answer.used is None else {"input_used": input_used(answer.used)}
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


def stream_event(spec: TaskSpec, item: StreamToken | TaskAnswer) -> pb.GenerateStreamResponse:
    if isinstance(item, StreamToken):
        return pb.GenerateStreamResponse(
            token=pb.TokenEvent(
                index=item.index, token=item.token, text=item.text, log_prob=item.log_prob
            )
        )
    if spec.answers:
        return pb.GenerateStreamResponse(answer_result=response(spec, item))
    return pb.GenerateStreamResponse(result=response(spec, item))


def model_info(listing: ModelListing) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=listing.name,
        version=listing.version,
        task=listing.task,
        source_language=listing.source_language,
        target_language=listing.target_language,
        architecture=listing.architecture,
        attention=listing.attention,
        precision=listing.precision,
        provider=listing.provider,
        max_source_tokens=listing.max_source_tokens,
        max_target_tokens=listing.max_target_tokens,
        evaluation=listing.evaluation,
        is_default_version=listing.is_default_version,
        description=listing.description,
    )


def language_score(detection: Detection) -> pb.LanguageScore:
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
    message = pb.TextResult(
        text=result.text,
        alternatives=result.alternatives,
        sentence_count=result.sentences,
        source_language=result.source_language,
    )
    if result.detection is not None:
        message.detected_language.CopyFrom(language_score(result.detection))
    return message


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
            response.model.CopyFrom(_model_ref(result.model))
    response.sentence_count = result.sentences
    if result.detection is not None:
        response.detected_language.CopyFrom(language_score(result.detection))
    return response
