"""The console entry point as an operator runs it: start, serve, SIGTERM, drain, exit 0."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from tests.conftest import REPO_ROOT, TEST_MODELS


def _start(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    log_path = tmp_path / "server.log"
    env = {
        **os.environ,
        "SEQ2SEQ_PROVIDERS": '["cpu"]',
        "SEQ2SEQ_DRAIN_GRACE_PERIOD": "5",
        "SEQ2SEQ_HTTP_PORT": "0",  # any free port: 8000 may be taken on a shared machine
        **(env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--model-repository",
            str(TEST_MODELS),
            *args,
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = re.search(r"on 127\.0\.0\.1:(\d+), metrics", log_path.read_text())
        if match:
            return process, int(match.group(1))
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log_path.read_text()}")
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"server did not start:\n{log_path.read_text()}")


def test_console_server_serves_then_drains_on_sigterm(tmp_path: Path) -> None:
    process, port = _start(tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
            stub = pb_grpc.Seq2SeqStub(channel)
            stream = stub.SummarizeStream(
                pb.SummarizeRequest(text="A library for parsing command line options. " * 5),
                timeout=30,
            )
            first = next(stream)  # the call is surely in flight now
            process.send_signal(signal.SIGTERM)
            rest = list(stream)  # ...and it still runs to its end
            final = (rest or [first])[-1]
            assert final.HasField("result")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "server.log").read_text()
    assert "CPUExecutionProvider" in log
    assert "draining" in log


def test_bad_settings_exit_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--max-batch-size", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "max_batch_size" in result.stderr


def test_connection_age_reaches_the_grpc_server_options() -> None:
    from service.server.server import grpc_server_options
    from tests.integration.conftest import make_settings

    options = dict(grpc_server_options(make_settings(max_connection_age=2.5)))
    assert options["grpc.max_connection_age_ms"] == 2500
    assert options["grpc.max_connection_age_grace_ms"] == 30000
    assert "grpc.max_connection_age_ms" not in dict(grpc_server_options(make_settings()))


def test_a_start_without_a_gpu_logs_no_error_or_warning(tmp_path: Path) -> None:
    """The default providers (cuda, then cpu) on a machine without CUDA: onnxruntime is
    never asked for CUDA, so none of its load errors reach the log, and each model's line
    says why it runs on the CPU."""
    process, _port = _start(tmp_path, env={"SEQ2SEQ_PROVIDERS": '["cuda","cpu"]'})
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    lines = (tmp_path / "server.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one of our JSON records
    if any("runs on CUDAExecutionProvider" in r["message"] for r in records):
        pytest.skip("this machine has a working CUDA")
    assert {r["level"] for r in records} == {"INFO"}, lines
    assert any("runs on CPUExecutionProvider; cuda left out: " in r["message"] for r in records)


def _broken_repository(tmp_path: Path) -> Path:
    """A repository whose only bundle fails its checks (a graph's bytes changed)."""
    repo = tmp_path / "broken"
    shutil.copytree(TEST_MODELS / "summarize-en" / "1", repo / "summarize-en" / "1")
    with (repo / "summarize-en" / "1" / "decoder.onnx").open("ab") as graph:
        graph.write(b"\0")
    return repo


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp / "no-such-folder", "is not a folder"),
        (lambda tmp: tmp, "it holds no <name>/<version>/bundle.json"),
        (_broken_repository, "all 1 bundle(s) in it were refused"),
    ],
    ids=["missing", "empty", "all-refused"],
)
def test_a_repository_that_serves_nothing_stops_the_start_with_status_2(
    tmp_path: Path, make: Callable[[Path], Path], says: str
) -> None:
    repository = make(tmp_path)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "service", "--port", "0", "--metrics-port", "0"),
            *("--model-repository", str(repository), "--log-format", "text"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("seq2seq-serve: ") and str(repository) in last and says in last
    assert "Traceback" not in result.stderr
