"""The sync and asyncio clients against a real server: every RPC, streams, options, errors."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from seq2seq_client import (
    AnswerResult,
    AsyncSeq2SeqClient,
    DecodeOptions,
    GenerateResult,
    Seq2SeqClient,
    Seq2SeqError,
    TokenEvent,
)
from tests.client.conftest import ServerThread
from tests.conftest import TEST_MODELS, heldout

FR = heldout("translate-en-fr")[1]["source"]  # "Establish TCP connection using SOCKS4/5 ..."
SUMMARY_SOURCE = heldout("summarize")[1]["source"]
QA = heldout("answer")[1]  # question, context, answer


@pytest.fixture(scope="module")
def client(served: ServerThread):
    with Seq2SeqClient(served.address, timeout=60) as sync_client:
        yield sync_client


def test_translate_returns_frozen_dataclasses(client: Seq2SeqClient) -> None:
    result = client.translate(FR, "fr")
    assert isinstance(result, GenerateResult)
    assert result.text.strip()
    assert result.model.name == "translate-en-fr"
    assert result.model.provider == "CPUExecutionProvider"
    assert result.source_tokens[-1] == "</s>"
    assert result.hypotheses[0].finish_reason in {"eos", "length"}
    assert result.hypotheses[0].attention is None  # not asked for
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.model.name = "other"  # type: ignore[misc]


def test_attention_and_scores_come_back_typed(client: Seq2SeqClient) -> None:
    options = DecodeOptions(return_attention=True, return_scores=True, max_output_tokens=12)
    best = client.translate(FR, "fr", source_language="en", options=options).hypotheses[0]
    assert best.attention is not None
    assert best.attention.rows == len(best.target_tokens) == len(best.token_scores) <= 12
    assert sum(best.attention.row(0)) == pytest.approx(1.0, abs=1e-3)
    assert best.score == pytest.approx(sum(best.token_scores), abs=1e-3)


def test_summarize_and_answer(client: Seq2SeqClient) -> None:
    summary = client.summarize(SUMMARY_SOURCE)
    assert summary.text.strip()
    assert summary.model.name == "summarize-en"
    answer = client.answer(QA["question"], QA["context"])
    assert isinstance(answer, AnswerResult)
    assert answer.model.name == "answer-en"
    assert answer.answerable == bool(answer.answer)


def test_list_models_and_task_filter(client: Seq2SeqClient) -> None:
    names = {m.name for m in client.list_models()}
    assert names == {p.name for p in TEST_MODELS.iterdir() if p.is_dir()}
    assert {"translate-en-fr", "summarize-en", "answer-en"} <= names
    translators = client.list_models("translate")
    assert {m.name for m in translators} == {n for n in names if n.startswith("translate-")}
    for model in translators:
        assert model.task == "translate" and model.source_language == "en"
        assert model.name == f"translate-en-{model.target_language}"
        assert model.is_default_version
        assert model.evaluation


@pytest.mark.parametrize("method", ["translate", "summarize", "answer"])
def test_streams_give_tokens_then_the_unary_result(client: Seq2SeqClient, method: str) -> None:
    if method == "translate":
        unary, events = client.translate(FR, "fr"), list(client.translate_stream(FR, "fr"))
    elif method == "summarize":
        unary = client.summarize(SUMMARY_SOURCE)
        events = list(client.summarize_stream(SUMMARY_SOURCE))
    else:
        unary = client.answer(QA["question"], QA["context"])
        events = list(client.answer_stream(QA["question"], QA["context"]))
    *tokens, final = events
    assert tokens
    assert all(isinstance(t, TokenEvent) for t in tokens)
    assert [t.index for t in tokens] == list(range(len(tokens)))
    assert type(final) is type(unary)
    assert final.hypotheses[0].text == unary.hypotheses[0].text  # greedy is deterministic


def test_errors_carry_the_status_and_the_servers_message(client: Seq2SeqClient) -> None:
    with pytest.raises(Seq2SeqError) as beam:
        client.translate(FR, "fr", options=DecodeOptions(beam_size=99))
    assert beam.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "beam" in beam.value.details
    with pytest.raises(Seq2SeqError) as missing:
        client.translate(FR, "fr", options=DecodeOptions(model="no-such-model"))
    assert missing.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(Seq2SeqError) as empty:  # a stream fails with the same status
        list(client.summarize_stream("   "))
    assert empty.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_per_call_deadline(client: Seq2SeqClient) -> None:
    with pytest.raises(Seq2SeqError) as late:
        client.summarize(SUMMARY_SOURCE, timeout=0.0001)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_async_client_every_rpc(served: ServerThread) -> None:
    async with AsyncSeq2SeqClient(served.address, timeout=60) as client:
        translated = await client.translate(FR, "fr")
        assert translated.text.strip()
        assert (await client.summarize(SUMMARY_SOURCE)).model.name == "summarize-en"
        answer = await client.answer(QA["question"], QA["context"])
        assert answer.model.name == "answer-en"
        assert len(await client.list_models()) == len(
            [p for p in TEST_MODELS.iterdir() if p.is_dir()]
        )
        events = [e async for e in client.translate_stream(FR, "fr")]
        assert isinstance(events[-1], GenerateResult)
        assert events[-1].text == translated.text
        assert all(isinstance(e, TokenEvent) for e in events[:-1])
        summary_events = [e async for e in client.summarize_stream(SUMMARY_SOURCE)]
        assert isinstance(summary_events[-1], GenerateResult)
        answer_events = [e async for e in client.answer_stream(QA["question"], QA["context"])]
        assert isinstance(answer_events[-1], AnswerResult)
        assert answer_events[-1].answer == answer.answer
        with pytest.raises(Seq2SeqError) as beam:
            await client.answer(QA["question"], QA["context"], options=DecodeOptions(beam_size=99))
        assert beam.value.code == grpc.StatusCode.INVALID_ARGUMENT
