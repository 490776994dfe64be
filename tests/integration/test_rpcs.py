"""Every RPC through a real gRPC client against the real server on the default bundles."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import sacrebleu
from google.rpc import error_details_pb2, status_pb2

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from service.api.status import STATUS_DETAILS_KEY
from tests.conftest import heldout

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _test_record(dataset: str) -> dict:
    """The first held-out example of a dataset (never seen in training)."""
    return heldout(dataset)[0]


async def test_translate_returns_french_with_model_and_timing(stub) -> None:
    record = _test_record("translate-en-fr")
    response = await stub.Translate(
        pb.TranslateRequest(text=record["source"], target_language="fr"), timeout=30
    )
    best = response.hypotheses[0]
    assert best.text.strip()
    assert best.finish_reason in {"eos", "length"}
    assert response.model.name == "translate-en-fr"
    assert response.model.version >= 1
    assert response.model.provider == "CPUExecutionProvider"
    assert response.source_tokens[-1] == "</s>"
    assert 0 <= response.timing.queue_seconds <= response.timing.total_seconds
    assert response.timing.compute_seconds > 0


async def test_attention_and_scores_when_asked(stub) -> None:
    record = _test_record("translate-en-fr")
    options = pb.DecodingOptions(return_attention=True, return_scores=True)
    response = await stub.Translate(
        pb.TranslateRequest(text=record["source"], target_language="fr", options=options),
        timeout=30,
    )
    best = response.hypotheses[0]
    attention = best.attention
    assert attention.rows == len(best.target_tokens) == len(best.token_scores)
    assert attention.cols == len(response.source_tokens)
    for row in range(attention.rows):
        weights = attention.weights[row * attention.cols : (row + 1) * attention.cols]
        assert sum(weights) == pytest.approx(1.0, abs=1e-3)  # soft attention sums to 1
    if best.finish_reason == "eos":  # the score also counts the end-of-sequence token
        assert best.score < sum(best.token_scores) + 1e-4
    else:
        assert best.score == pytest.approx(sum(best.token_scores), abs=1e-3)


async def test_summarize_is_shorter_than_its_source(stub) -> None:
    record = _test_record("summarize")
    response = await stub.Summarize(pb.SummarizeRequest(text=record["source"]), timeout=30)
    summary = response.hypotheses[0].text
    assert summary.strip()
    assert len(summary.split()) < len(record["source"].split())
    assert response.model.name == "summarize-en"


async def test_answer_answerable_and_unanswerable(stub) -> None:
    record = _test_record("answer")
    response = await stub.Answer(
        pb.AnswerRequest(question=record["question"], context=record["context"]), timeout=30
    )
    assert response.model.name == "answer-en"
    if response.answerable:
        assert response.answer.strip()
    else:
        assert response.answer == ""


async def test_max_output_tokens_caps_the_output(stub) -> None:
    record = _test_record("translate-en-fr")
    options = pb.DecodingOptions(max_output_tokens=2)
    response = await stub.Translate(
        pb.TranslateRequest(text=record["source"], target_language="fr", options=options),
        timeout=30,
    )
    assert len(response.hypotheses[0].target_tokens) <= 2


async def test_streaming_sends_tokens_then_the_result(stub) -> None:
    record = _test_record("summarize")
    events = [
        event
        async for event in stub.SummarizeStream(
            pb.SummarizeRequest(text=record["source"]), timeout=30
        )
    ]
    tokens = [e.token for e in events if e.HasField("token")]
    assert events[-1].HasField("result")
    final = events[-1].result.hypotheses[0]
    assert [t.token for t in tokens] == list(final.target_tokens)
    assert [t.index for t in tokens] == list(range(len(tokens)))
    if tokens:
        assert tokens[-1].text == final.text


@pytest.mark.parametrize("target", ["fr", "de", "it"])
async def test_each_language_pair_translates_held_out_text(stub, target: str) -> None:
    """30 held-out sentences the model never saw, through the RPC: the translations score
    well above copying the source (chrF against the human translations)."""
    records = heldout(f"translate-en-{target}")
    replies = await asyncio.gather(
        *(
            stub.Translate(
                pb.TranslateRequest(text=r["source"], target_language=target), timeout=60
            )
            for r in records
        )
    )
    assert {reply.model.name for reply in replies} == {f"translate-en-{target}"}
    references = [[r["target"] for r in records]]
    model = sacrebleu.corpus_chrf([reply.hypotheses[0].text for reply in replies], references)
    copy = sacrebleu.corpus_chrf([r["source"] for r in records], references)
    assert model.score > copy.score + 5, (model.score, copy.score)


async def test_list_models_has_every_task_with_evaluation(stub) -> None:
    response = await stub.ListModels(pb.ListModelsRequest(), timeout=10)
    by_task = {m.task: m for m in response.models}
    assert set(by_task) >= {"translate", "summarize", "answer"}
    assert by_task["translate"].source_language == "en"
    for model in response.models:
        assert model.evaluation, f"{model.name} has no evaluation figures"
        assert model.provider == "CPUExecutionProvider"
        assert model.is_default_version
    only = await stub.ListModels(pb.ListModelsRequest(task="answer"), timeout=10)
    assert {m.task for m in only.models} == {"answer"}


def _field_violation(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return bad.field_violations[0].field
    return ""


LONG = "word " * 2000
BAD_REQUESTS = [
    (
        "Translate",
        pb.TranslateRequest(text="", target_language="fr"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "text",
    ),
    (
        "Translate",
        pb.TranslateRequest(text="   \n ", target_language="fr"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "text",
    ),
    (
        "Translate",
        pb.TranslateRequest(text="hello", target_language=""),
        grpc.StatusCode.INVALID_ARGUMENT,
        "target_language",
    ),
    (
        "Translate",
        pb.TranslateRequest(text="hello", target_language="xx"),
        grpc.StatusCode.NOT_FOUND,
        "",
    ),
    (  # over max_document_chars (100,000); shorter long texts are split, not refused
        "Translate",
        pb.TranslateRequest(text=LONG * 10 + "word", target_language="fr"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "text",
    ),
    (
        "Translate",
        pb.TranslateRequest(text=LONG, target_language="fr", format="pdf"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "format",
    ),
    (
        "Summarize",
        pb.SummarizeRequest(text="x", options=pb.DecodingOptions(model="nope")),
        grpc.StatusCode.NOT_FOUND,
        "",
    ),
    (
        "Summarize",
        pb.SummarizeRequest(
            text="x", options=pb.DecodingOptions(model="summarize-en", model_version=99)
        ),
        grpc.StatusCode.NOT_FOUND,
        "",
    ),
    (
        "Summarize",
        pb.SummarizeRequest(text="x", options=pb.DecodingOptions(model="answer-en")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.model",
    ),
    (
        "Summarize",
        pb.SummarizeRequest(text="x", options=pb.DecodingOptions(beam_size=1000)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.beam_size",
    ),
    (
        "Summarize",
        pb.SummarizeRequest(text="x", options=pb.DecodingOptions(n_best=3)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.n_best",
    ),
    (
        "Summarize",
        pb.SummarizeRequest(text="x", options=pb.DecodingOptions(max_output_tokens=100000)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.max_output_tokens",
    ),
    (
        "Summarize",
        pb.SummarizeRequest(text="x", options=pb.DecodingOptions(length_penalty=-1)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.length_penalty",
    ),
    (
        "Answer",
        pb.AnswerRequest(question="", context="some context"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "question",
    ),
    (
        "Answer",
        pb.AnswerRequest(question="Who?", context=""),
        grpc.StatusCode.INVALID_ARGUMENT,
        "context",
    ),
]


@pytest.mark.parametrize(("method", "request_message", "code", "field"), BAD_REQUESTS)
async def test_bad_input_gets_a_clear_status_and_the_server_keeps_serving(
    stub, method, request_message, code, field
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(request_message, timeout=10)
    assert caught.value.code() == code
    assert caught.value.details()
    if field:
        assert _field_violation(caught.value) == field
        assert field.split(".")[-1] in caught.value.details()
    response = await stub.ListModels(pb.ListModelsRequest(), timeout=10)
    assert response.models


async def test_bad_input_on_a_stream_gets_the_same_status(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.TranslateStream(pb.TranslateRequest(text="", target_language="fr")):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_expired_deadline_is_deadline_exceeded(stub) -> None:
    record = _test_record("summarize")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Summarize(pb.SummarizeRequest(text=record["source"]), timeout=0.000001)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_beam_search_returns_n_best_in_score_order(stub) -> None:
    record = _test_record("translate-en-fr")
    options = pb.DecodingOptions(beam_size=4, n_best=3, length_penalty=0.6, return_scores=True)
    response = await stub.Translate(
        pb.TranslateRequest(text=record["source"], target_language="fr", options=options),
        timeout=60,
    )
    hypotheses = response.hypotheses
    assert len(hypotheses) == 3
    assert len({h.text for h in hypotheses}) == 3
    scores = [h.score for h in hypotheses]
    assert scores == sorted(scores, reverse=True)
    assert all(len(h.token_scores) == len(h.target_tokens) for h in hypotheses)


async def test_beam_stream_sends_the_best_hypothesis_tokens(stub) -> None:
    options = pb.DecodingOptions(beam_size=3)
    events = [
        event
        async for event in stub.TranslateStream(
            pb.TranslateRequest(
                text="A tool to compress files", target_language="fr", options=options
            ),
            timeout=60,
        )
    ]
    final = events[-1].result.hypotheses[0]
    assert [e.token.token for e in events[:-1]] == list(final.target_tokens)
