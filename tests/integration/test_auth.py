"""Bearer-token authentication against a real server: refused, accepted, exempt, never logged."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.server.main import log_settings
from service.server.server import Seq2SeqServer
from service.settings import Settings
from tests.client.conftest import run_cli
from tests.integration.conftest import http, make_settings, metric

pytestmark = pytest.mark.asyncio(loop_scope="session")

ENV_TOKEN = "env-token-4f1c9a7e-SECRET"
FILE_TOKEN = "file-token-b83d02aa-SECRET"
TOKENS = (ENV_TOKEN, FILE_TOKEN)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


@pytest.fixture(scope="module")
def captured_log() -> Iterator[_Collect]:
    """Every log record of the module at DEBUG, with its extra fields."""
    root = logging.getLogger()
    handler, level = _Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "tokens"
    path.write_text(f"# accepted tokens\n\n{FILE_TOKEN}\n")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def auth_server(captured_log: _Collect, token_file: Path) -> AsyncIterator[Seq2SeqServer]:
    settings = make_settings(auth_tokens=(ENV_TOKEN,), auth_tokens_file=token_file)
    log_settings(settings)  # as seq2seq-serve does at start-up
    instance = Seq2SeqServer(settings)
    await instance.start()
    yield instance
    await instance.drain_and_stop(grace=1.0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def auth_channel(auth_server: Seq2SeqServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{auth_server.port}") as chan:
        yield chan


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "missing"),
        (_bearer("not-a-token"), "not accepted"),
        (_bearer(ENV_TOKEN + "x"), "not accepted"),
        (_bearer(ENV_TOKEN[:-1]), "not accepted"),
        ((("authorization", f"Basic {ENV_TOKEN}"),), "missing"),
        (_bearer("short"), "not accepted"),
    ],
)
async def test_missing_or_wrong_token_is_unauthenticated(
    auth_server, auth_channel, metadata, reason
) -> None:
    stub = pb_grpc.Seq2SeqStub(auth_channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason in caught.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        async for _ in stub.SummarizeStream(
            pb.SummarizeRequest(text="a tool"), metadata=metadata, timeout=10
        ):
            pass
    assert streamed.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", TOKENS, ids=["auth_tokens", "auth_tokens_file"])
async def test_a_configured_token_is_accepted(auth_channel, token: str) -> None:
    stub = pb_grpc.Seq2SeqStub(auth_channel)
    response = await stub.Summarize(
        pb.SummarizeRequest(text="A library for parsing command line options."),
        metadata=_bearer(token),
        timeout=30,
    )
    assert response.hypotheses[0].text.strip()
    events = [
        e
        async for e in stub.SummarizeStream(
            pb.SummarizeRequest(text="a tool"), metadata=_bearer(token), timeout=30
        )
    ]
    assert events[-1].HasField("result")


async def test_refused_calls_are_counted(auth_server, auth_channel) -> None:
    labels = {"grpc_method": "ListModels", "grpc_code": "UNAUTHENTICATED"}
    before = await metric(auth_server.metrics_port, "grpc_server_handled_total", **labels) or 0
    with pytest.raises(grpc.aio.AioRpcError):
        await pb_grpc.Seq2SeqStub(auth_channel).ListModels(pb.ListModelsRequest(), timeout=10)
    after = await metric(auth_server.metrics_port, "grpc_server_handled_total", **labels)
    assert after == before + 1


async def test_health_and_reflection_need_no_token(auth_channel) -> None:
    health = health_pb2_grpc.HealthStub(auth_channel)
    response = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(auth_channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services="")]
    replies = [r async for r in reflection.ServerReflectionInfo(iter(requests), timeout=5)]
    names = {s.name for s in replies[0].list_services_response.service}
    assert "seq2seq.v1.Seq2Seq" in names


async def test_the_client_cli_token_option_works(auth_server) -> None:
    target = ("--target", f"127.0.0.1:{auth_server.port}")
    ok = await asyncio.to_thread(run_cli, "models", *target, "--token", FILE_TOKEN)
    assert ok.returncode == 0, ok.stderr
    assert "summarize-en" in ok.stdout
    refused = await asyncio.to_thread(run_cli, "models", *target, "--token", "wrong")
    assert refused.returncode != 0
    assert "UNAUTHENTICATED" in refused.stderr
    assert "wrong" not in refused.stderr


async def test_tokens_never_reach_the_log(auth_server, auth_channel, captured_log) -> None:
    stub = pb_grpc.Seq2SeqStub(auth_channel)
    await stub.ListModels(pb.ListModelsRequest(), metadata=_bearer(ENV_TOKEN), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ListModels(
            pb.ListModelsRequest(), metadata=_bearer(FILE_TOKEN + "!"), timeout=10
        )
    text = "\n".join(captured_log.lines)
    assert "UNAUTHENTICATED" in text  # the refusal was logged...
    assert "'auth_tokens': ['***']" in text  # ...and so were the settings, masked
    for token in TOKENS:
        assert token not in text
        assert token not in repr(auth_server.settings)
    assert "SECRET" not in text


async def test_describe_masks_tokens_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SEQ2SEQ_AUTH_TOKENS", json.dumps(["a-secret", "b-secret"]))
    settings = Settings()
    assert settings.bearer_tokens() == ("a-secret", "b-secret")
    described = json.dumps(settings.describe())
    assert "secret" not in described
    assert settings.describe()["auth_tokens"] == ["***", "***"]


async def test_blank_tokens_are_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="auth_tokens"):
        make_settings(auth_tokens=(" padded ",))


# --- HTTP: one check in the middleware, before any route reads the body -------------------
@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/v1/translate", b"{not json at all", "application/json"),
        ("/v1/summarize", b'{"text": "a tool"}', "application/json"),
        ("/v1/detect", b'{"text": "hello"}', "application/json"),
    ],
)
async def test_http_refuses_without_a_token_whatever_the_body(
    auth_server, path: str, body: bytes, content_type: str
) -> None:
    refused = await asyncio.to_thread(
        http, auth_server.http_port, path, body, content_type=content_type
    )
    assert refused[0] == 401 and refused[1]["code"] == "unauthenticated"
    wrong = await asyncio.to_thread(
        http,
        auth_server.http_port,
        path,
        body,
        content_type=content_type,
        headers={"authorization": "Bearer nope"},
    )
    assert wrong[0] == 401


async def test_http_takes_every_configured_token(auth_server) -> None:
    for token in TOKENS:
        status, body = await asyncio.to_thread(
            http,
            auth_server.http_port,
            "/v1/detect",
            {"text": "hello there friends"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert status == 200, body


@pytest.mark.parametrize("where", ["header", "query", "form", "json", "none", "wrong"])
async def test_libretranslate_keys_are_the_same_tokens(auth_server, where: str) -> None:
    fields = {"q": "a tool to compress files", "source": "en", "target": "fr"}
    path, headers, body, content_type = "/translate", {}, None, "application/json"
    if where == "header":
        headers = {"authorization": f"Bearer {ENV_TOKEN}"}
    elif where == "query":
        path = f"/translate?api_key={FILE_TOKEN}"
    elif where == "form":
        body = urllib.parse.urlencode({**fields, "api_key": ENV_TOKEN}).encode()
        content_type = "application/x-www-form-urlencoded"
    elif where in ("json", "wrong"):
        fields["api_key"] = FILE_TOKEN if where == "json" else "nope"
    status, answer = await asyncio.to_thread(
        http,
        auth_server.http_port,
        path,
        body if body is not None else json.dumps(fields).encode(),
        content_type=content_type,
        headers=headers,
    )
    if where in ("none", "wrong"):
        assert (status, answer["error"]) == (403, "Invalid API key")
    else:
        assert status == 200 and answer["translatedText"], answer
