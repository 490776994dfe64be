"""Structured access logs and the request id, in-process and from the console server."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.api.interceptors import ACCESS_LOGGER, REQUEST_ID_KEY
from service.logging_setup import JsonFormatter
from tests.conftest import REPO_ROOT, TEST_MODELS


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The access logger's records as JSON lines, whatever the root logger does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _entries(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _by_id(stream: io.StringIO, request_id: str) -> dict:
    (entry,) = [e for e in _entries(stream) if e.get("request_id") == request_id]
    return entry


@pytest.mark.asyncio(loop_scope="session")
async def test_request_id_is_echoed_and_the_access_line_has_every_field(stub, access_lines) -> None:
    call = stub.Translate(
        pb.TranslateRequest(text="A free tool.", target_language="fr"),
        metadata=((REQUEST_ID_KEY, "req-test-42"),),
        timeout=30,
    )
    assert dict(await call.initial_metadata())[REQUEST_ID_KEY] == "req-test-42"
    response = await call
    entry = _by_id(access_lines, "req-test-42")
    assert {"ts", "level", "logger", "message", "peer"} <= entry.keys()
    assert entry["level"] == "INFO" and entry["logger"] == ACCESS_LOGGER
    assert (entry["rpc"], entry["code"]) == ("Translate", "OK")
    assert (entry["model"], entry["version"]) == ("translate-en-fr", response.model.version)
    assert 0 <= entry["queue_seconds"] <= entry["total_seconds"]
    assert entry["compute_seconds"] > 0
    assert entry["peer"].startswith("ipv4:127.0.0.1")


@pytest.mark.parametrize("sent", [None, "has spaces in it", "x" * 200])
@pytest.mark.asyncio(loop_scope="session")
async def test_a_missing_or_unusable_request_id_is_generated(stub, access_lines, sent) -> None:
    metadata = () if sent is None else ((REQUEST_ID_KEY, sent),)
    call = stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10)
    request_id = dict(await call.initial_metadata())[REQUEST_ID_KEY]
    await call
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert _by_id(access_lines, request_id)["rpc"] == "ListModels"


@pytest.mark.asyncio(loop_scope="session")
async def test_failed_and_streaming_calls_are_logged(stub, access_lines) -> None:
    failing = stub.Summarize(
        pb.SummarizeRequest(text=""), metadata=((REQUEST_ID_KEY, "bad-1"),), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await failing
    assert dict(error.value.initial_metadata())[REQUEST_ID_KEY] == "bad-1"
    entry = _by_id(access_lines, "bad-1")
    assert entry["code"] == "INVALID_ARGUMENT" and "text is empty" in entry["error"]
    assert "model" not in entry

    stream = stub.SummarizeStream(
        pb.SummarizeRequest(text="A tool to compress files."),
        metadata=((REQUEST_ID_KEY, "stream-1"),),
        timeout=30,
    )
    events = [event async for event in stream]
    assert events[-1].HasField("result")
    entry = _by_id(access_lines, "stream-1")
    assert (entry["rpc"], entry["code"], entry["model"]) == (
        "SummarizeStream",
        "OK",
        "summarize-en",
    )


def test_console_server_logs_one_json_object_per_line(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    env = {**os.environ, "SEQ2SEQ_PROVIDERS": '["cpu"]', "SEQ2SEQ_DRAIN_GRACE_PERIOD": "5"}
    args = ["--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--log-format", "json"]
    args += ["--http-host", "127.0.0.1", "--http-port", "0"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", *args, "--model-repository", str(TEST_MODELS)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not (match := re.search(r"on 127\.0\.0\.1:(\d+), metrics", log_path.read_text())):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        with grpc.insecure_channel(f"127.0.0.1:{match.group(1)}") as channel:
            pb_grpc.Seq2SeqStub(channel).Summarize(
                pb.SummarizeRequest(text="A tool to compress files."),
                metadata=((REQUEST_ID_KEY, "cli-1"),),
                timeout=30,
            )
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert all({"ts", "level", "logger", "message"} <= e.keys() for e in entries)
    (access,) = [e for e in entries if e.get("request_id") == "cli-1"]
    assert access["rpc"] == "Summarize" and access["model"] == "summarize-en"
    (settings,) = [e["settings"] for e in entries if e["message"] == "settings"]
    assert settings["host"] == "127.0.0.1" and settings["log_format"] == "json"  # a JSON object
