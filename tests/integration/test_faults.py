"""Faults: a runtime that raises, a slow runtime, SIGTERM under load, no CUDA.

Runtime faults are injected by wrapping a served model's `runtime.step` on a private
server in thread mode (the runtime is in this process), so the engine, scheduler and
servicer under test are the real ones. Engine-process faults: tests/integration/
test_engine_process.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.engine_process.thread_engine import ThreadEngine
from service.server.server import Seq2SeqServer
from tests.conftest import REPO_ROOT, TEST_MODELS
from tests.integration.conftest import assert_load_shed, make_settings, metric, wait_for
from tests.integration.test_cli_and_drain import _start

on_session_loop = pytest.mark.asyncio(loop_scope="session")

SOURCE = "A library for parsing command line options and writing them back out."


@asynccontextmanager
async def _serving(**overrides: object) -> AsyncIterator[tuple[Seq2SeqServer, pb_grpc.Seq2SeqStub]]:
    server = Seq2SeqServer(make_settings(**{"engine_mode": "thread", **overrides}))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield server, pb_grpc.Seq2SeqStub(channel)
    finally:
        await server.drain_and_stop(grace=2.0)


def _wrap_step(
    server: Seq2SeqServer, name: str, monkeypatch: pytest.MonkeyPatch, before: Callable[[], None]
) -> None:
    """Run `before()` ahead of every decoder step of model `name`."""
    model = server.plane.models.find(name, 1)
    assert model is not None and isinstance(model.engine, ThreadEngine)
    runtime = model.engine.core.model
    original = runtime.step

    def step(*args: Any, **kwargs: Any) -> Any:
        before()
        return original(*args, **kwargs)

    monkeypatch.setattr(runtime, "step", step)


@on_session_loop
async def test_a_failing_runtime_fails_its_own_requests_only(monkeypatch) -> None:
    def explode() -> None:
        raise RuntimeError("onnxruntime: simulated device fault")

    async with _serving() as (server, stub):
        _wrap_step(server, "summarize-en", monkeypatch, explode)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Summarize(pb.SummarizeRequest(text=SOURCE), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert "model failed" in caught.value.details()
        assert "simulated" not in caught.value.details()  # internals stay in the server log
        translated = await stub.Translate(
            pb.TranslateRequest(text=SOURCE, target_language="fr"), timeout=30
        )
        assert translated.hypotheses[0].text
        answered = await stub.Answer(
            pb.AnswerRequest(question="What is it?", context=SOURCE), timeout=30
        )
        assert answered.model.name == "answer-en"
        failures = await metric(
            server.metrics_port, "seq2seq_model_failures_total", model="summarize-en"
        )
        assert failures is not None and failures >= 1
        monkeypatch.undo()  # the fault clears: the same model serves again
        again = await stub.Summarize(pb.SummarizeRequest(text=SOURCE), timeout=30)
        assert again.hypotheses[0].text


@on_session_loop
async def test_a_slow_model_honours_deadlines(monkeypatch) -> None:
    async with _serving() as (server, stub):
        _wrap_step(server, "summarize-en", monkeypatch, lambda: time.sleep(0.1))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Summarize(pb.SummarizeRequest(text=SOURCE), timeout=0.25)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        async def expired_and_left() -> bool:
            port = server.metrics_port
            left = [
                await metric(
                    port, "seq2seq_requests_finished_total", model="summarize-en", status=status
                )
                for status in ("expired", "cancelled")  # whichever the engine saw first
            ]
            inflight = await metric(port, "seq2seq_inflight_requests", model="summarize-en")
            return any(left) and not inflight

        # The engine drops the request at its next step instead of decoding on to the end.
        await wait_for(expired_and_left, 10, "the expired request to leave the batch")
        translated = await stub.Translate(
            pb.TranslateRequest(text=SOURCE, target_language="fr"), timeout=30
        )
        assert translated.hypotheses[0].text


@on_session_loop
async def test_a_slow_model_sheds_load_with_resource_exhausted(monkeypatch) -> None:
    async with _serving(max_batch_size=1, max_queue_size=2) as (server, stub):
        _wrap_step(server, "summarize-en", monkeypatch, lambda: time.sleep(0.01))
        calls = [
            stub.Summarize(
                pb.SummarizeRequest(text=SOURCE, options=pb.DecodingOptions(max_output_tokens=8)),
                timeout=60,
            )
            for _ in range(12)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        await assert_load_shed(results, server.metrics_port)


def test_sigterm_under_load_answers_or_refuses_every_call(tmp_path: Path) -> None:
    process, port = _start(tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.Seq2SeqStub(channel)
            request = pb.SummarizeRequest(text=SOURCE, options=pb.DecodingOptions(beam_size=4))
            sent: list[grpc.Future] = [
                stub.Summarize.future(request, timeout=40) for _ in range(24)
            ]
            stub.Summarize(pb.SummarizeRequest(text="warm"), timeout=30)  # load is on
            process.send_signal(signal.SIGTERM)
            sent += [stub.Summarize.future(request, timeout=40) for _ in range(8)]
            codes = [_code(call) for call in sent]  # each ends by its 40 s deadline at most
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
        assert codes[:24].count(grpc.StatusCode.OK) >= 1  # in-flight work was finished
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_sigterm_with_clients_that_never_stop_answers_or_refuses_every_call(
    tmp_path: Path,
) -> None:
    """Clients that ignore health and retry at once keep calling through the whole grace
    period; the process still ends with exit 0 and none of their calls is CANCELLED."""
    process, port = _start(tmp_path, env={"SEQ2SEQ_DRAIN_GRACE_PERIOD": "1.5"})
    codes: list[grpc.StatusCode] = []
    lock = threading.Lock()

    def hammer() -> None:
        request = pb.SummarizeRequest(text=SOURCE)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.Seq2SeqStub(channel)
            while process.poll() is None:
                try:
                    stub.Summarize(request, timeout=30)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                with lock:
                    codes.append(code)

    clients = [threading.Thread(target=hammer) for _ in range(6)]
    try:
        for client in clients:
            client.start()
        wait_until = time.monotonic() + 30
        while codes.count(grpc.StatusCode.OK) < 12 and time.monotonic() < wait_until:
            time.sleep(0.05)  # polling a counter another thread fills: there is no event
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        for client in clients:
            client.join(60)
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, set(codes)
    assert codes.count(grpc.StatusCode.OK) >= 12
    log = (tmp_path / "server.log").read_text()
    assert "clients still calling after 1.5 s" in log  # the path this test is about


def _code(call: grpc.Future) -> grpc.StatusCode:
    """The call's status; DEADLINE_EXCEEDED (a hang) fails the test's status check."""
    error = call.exception(timeout=60)
    return grpc.StatusCode.OK if error is None else error.code()


@on_session_loop
async def test_without_cuda_the_server_runs_on_cpu_and_says_why(caplog) -> None:
    caplog.set_level(logging.INFO)
    async with _serving(providers=("cuda", "cpu")) as (server, stub):
        response = await stub.Summarize(pb.SummarizeRequest(text=SOURCE), timeout=30)
        assert response.model.provider in {"CPUExecutionProvider", "CUDAExecutionProvider"}
        if response.model.provider == "CUDAExecutionProvider":
            pytest.skip("this machine has a working CUDA")
        info = await metric(
            server.metrics_port, "seq2seq_model_info", provider="CPUExecutionProvider"
        )
        assert info == len(server.plane.models.all())
    lines = [r.getMessage() for r in caplog.records if r.name == "service.engine.runtime"]
    why = [line for line in lines if "runs on CPUExecutionProvider; cuda left out: " in line]
    assert len(why) == len(server.plane.models.all()), lines  # one line per model
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


def test_require_gpu_without_cuda_refuses_to_start(tmp_path: Path) -> None:
    env_cmd = [
        sys.executable,
        "-m",
        "service",
        "--port",
        "0",
        "--metrics-port",
        "0",
        "--http-port",
        "0",
        "--providers",
        "cuda,cpu",
        "--model-repository",
        str(TEST_MODELS),
    ]
    result = subprocess.run(
        env_cmd,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SEQ2SEQ_REQUIRE_GPU": "true"},
    )
    if result.returncode == 0:
        pytest.skip("this machine has a working CUDA")
    assert result.returncode == 1, result.stderr
    assert "require_gpu is set but" in result.stderr
    assert "CPUExecutionProvider" in result.stderr


@on_session_loop
async def test_concurrency_limit_answers_resource_exhausted(monkeypatch) -> None:
    async with _serving(max_concurrent_rpcs=2) as (server, stub):
        _wrap_step(server, "summarize-en", monkeypatch, lambda: time.sleep(0.05))
        calls = [stub.Summarize(pb.SummarizeRequest(text=SOURCE), timeout=30) for _ in range(6)]
        codes = []
        for call in calls:
            try:
                await call
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
        assert codes.count(grpc.StatusCode.OK) >= 1
        monkeypatch.undo()
        assert (await stub.Summarize(pb.SummarizeRequest(text=SOURCE), timeout=30)).hypotheses
