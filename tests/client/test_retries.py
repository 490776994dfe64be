"""Retries, deadlines and the bearer token, proven against a tiny scripted gRPC server that
fails a set number of attempts with a chosen status before it answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from seq2seq_client import AsyncSeq2SeqClient, RetryPolicy, Seq2SeqClient, Seq2SeqError
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.05, max_backoff=0.2)


class ScriptedServicer(pb_grpc.Seq2SeqServicer):
    """Fails the first `failures` attempts of every call with `code`, then answers."""

    def __init__(self) -> None:
        self.failures = 0
        self.code = grpc.StatusCode.UNAVAILABLE
        self.delay = 0.0  # seconds each answer takes
        self.attempts: list[float] = []  # time.monotonic() of each attempt
        self.metadata: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def script(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        with self._lock:
            self.failures, self.code = failures, code
            self.attempts, self.metadata, self.delay = [], [], 0.0

    def _attempt(self, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.attempts.append(time.monotonic())
            self.metadata.append(dict(context.invocation_metadata()))
            failing = len(self.attempts) <= self.failures
        if failing:
            context.abort(self.code, f"scripted failure {len(self.attempts)}")
        time.sleep(self.delay)

    def Translate(self, request, context):
        self._attempt(context)
        return pb.GenerateResponse(
            hypotheses=[pb.Hypothesis(text=f"<{request.text}>", finish_reason="eos")],
            model=pb.ModelRef(name="scripted", version=1, provider="none"),
        )

    def TranslateStream(self, request, context):
        self._attempt(context)
        yield pb.GenerateStreamResponse(token=pb.TokenEvent(index=0, token="a", text="a"))
        yield pb.GenerateStreamResponse(
            result=pb.GenerateResponse(hypotheses=[pb.Hypothesis(text="a")])
        )

    def ListModels(self, request, context):
        self._attempt(context)
        return pb.ListModelsResponse(models=[pb.ModelInfo(name="scripted", version=1)])


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[ScriptedServicer, str]]:
    servicer = ScriptedServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_Seq2SeqServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED], ids=str
)
def test_retryable_codes_are_retried_until_success(scripted, code: grpc.StatusCode) -> None:
    servicer, target = scripted
    servicer.script(failures=2, code=code)
    with Seq2SeqClient(target, retry=FAST) as client:
        assert client.translate("hi", "fr").text == "<hi>"
    assert len(servicer.attempts) == 3
    gaps = [b - a for a, b in zip(servicer.attempts, servicer.attempts[1:], strict=False)]
    assert all(0 < gap < 1.0 for gap in gaps)  # backed off, within max_backoff and jitter


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL],
    ids=str,
)
def test_other_codes_are_not_retried(scripted, code: grpc.StatusCode) -> None:
    servicer, target = scripted
    servicer.script(failures=1, code=code)
    with Seq2SeqClient(target, retry=FAST) as client, pytest.raises(Seq2SeqError) as failed:
        client.translate("hi", "fr")
    assert failed.value.code == code
    assert failed.value.details == "scripted failure 1"
    assert len(servicer.attempts) == 1


def test_attempts_stop_at_max_attempts(scripted) -> None:
    servicer, target = scripted
    servicer.script(failures=100)
    with Seq2SeqClient(target, retry=FAST) as client, pytest.raises(Seq2SeqError) as failed:
        client.list_models()
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(servicer.attempts) == FAST.max_attempts


def test_backoff_grows_exponentially_up_to_its_cap(scripted) -> None:
    servicer, target = scripted
    servicer.script(failures=100)
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.1, backoff_multiplier=3, max_backoff=0.5)
    with Seq2SeqClient(target, retry=policy) as client, pytest.raises(Seq2SeqError):
        client.translate("hi", "fr")
    gaps = [b - a for a, b in zip(servicer.attempts, servicer.attempts[1:], strict=False)]
    assert len(gaps) == 4
    assert gaps[2] > gaps[0]  # about 0.1 s, then 0.3, then the 0.5 s cap (gRPC adds jitter)


def test_retry_none_turns_retries_off(scripted) -> None:
    servicer, target = scripted
    servicer.script(failures=1)
    with Seq2SeqClient(target, retry=None) as client, pytest.raises(Seq2SeqError):
        client.translate("hi", "fr")
    assert len(servicer.attempts) == 1


def test_a_stream_is_retried_before_its_first_message(scripted) -> None:
    servicer, target = scripted
    servicer.script(failures=2)
    with Seq2SeqClient(target, retry=FAST) as client:
        events = list(client.translate_stream("hi", "fr"))
    assert len(events) == 2
    assert len(servicer.attempts) == 3


def test_deadline_is_per_call_and_not_retried(scripted) -> None:
    servicer, target = scripted
    servicer.script(failures=0)
    servicer.delay = 1.0
    with (
        Seq2SeqClient(target, retry=FAST, timeout=30) as client,
        pytest.raises(Seq2SeqError) as late,
    ):
        client.translate("hi", "fr", timeout=0.2)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(servicer.attempts) == 1


def test_bearer_token_is_sent_as_metadata(scripted) -> None:
    servicer, target = scripted
    servicer.script(failures=1)
    with Seq2SeqClient(target, token="s3cret", retry=FAST) as client:
        client.translate("hi", "fr")
    assert [m.get("authorization") for m in servicer.metadata] == ["Bearer s3cret"] * 2
    servicer.script(failures=0)
    with Seq2SeqClient(target) as client:
        client.list_models()
    assert "authorization" not in servicer.metadata[0]


async def test_async_client_retries_the_same_way(scripted) -> None:
    servicer, target = scripted
    servicer.script(failures=2, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    async with AsyncSeq2SeqClient(target, retry=FAST, token="t") as client:
        assert (await client.translate("hi", "fr")).text == "<hi>"
        assert len(servicer.attempts) == 3
        servicer.script(failures=100)
        with pytest.raises(Seq2SeqError) as failed:
            await asyncio.wait_for(client.list_models(), timeout=30)
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(servicer.attempts) == FAST.max_attempts
    assert servicer.metadata[0]["authorization"] == "Bearer t"


def test_retry_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=9)
    with pytest.raises(ValueError, match="status code"):
        RetryPolicy(retryable_codes=("SOMETIMES",))
