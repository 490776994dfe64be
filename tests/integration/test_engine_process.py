"""The engine core in its own process: killed under load, hung, orphaned, fed garbage,
full, and split into groups. Every test runs the real server in process mode and acts on
the real engine process from outside (signals, a stranger's socket)."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
import zmq
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.engine_process.backends import ProcessBackend
from service.server.server import SERVICE_NAME, Seq2SeqServer
from tests.integration.conftest import assert_load_shed, make_settings, metric, wait_for
from tests.integration.test_cli_and_drain import _start

on_session_loop = pytest.mark.asyncio(loop_scope="session")

TEXT = "A library for parsing command line options and writing them back out."
SERVING = health_pb2.HealthCheckResponse.SERVING
FAST = {  # supervision sped up so that each fault is seen and repaired in about a second
    "engine_mode": "process",
    "engine_heartbeat_interval": 0.2,
    "engine_heartbeat_timeout": 1.0,
    "engine_restart_backoff": 0.1,
    "engine_restart_backoff_max": 2.0,
}


@asynccontextmanager
async def _serving(**overrides: object) -> AsyncIterator[tuple[Seq2SeqServer, grpc.aio.Channel]]:
    server = Seq2SeqServer(make_settings(**{**FAST, **overrides}))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield server, channel
    finally:
        await server.drain_and_stop(grace=2.0)


def _engine_pid(server: Seq2SeqServer, group: str = "default") -> int | None:
    return server.backend.engine_pids().get(group)


async def _health(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _client(stub: pb_grpc.Seq2SeqStub, stop: asyncio.Event, codes: list[str]) -> None:
    """One closed-loop client: a call, its status, the next call."""
    request = pb.TranslateRequest(text=TEXT, target_language="fr")
    while not stop.is_set():
        try:
            await stub.Translate(request, timeout=30)
            codes.append("OK")
        except grpc.aio.AioRpcError as error:
            codes.append(error.code().name)
            await asyncio.sleep(0.02)  # the engine is down: do not spin


@on_session_loop
async def test_sigkill_under_load_fails_calls_fast_and_the_model_comes_back(caplog) -> None:
    async with _serving() as (server, channel):
        stub = pb_grpc.Seq2SeqStub(channel)
        killed = _engine_pid(server)
        assert killed is not None and _alive(killed)
        codes: list[str] = []
        stop = asyncio.Event()
        clients = [asyncio.create_task(_client(stub, stop, codes)) for _ in range(12)]

        async def answered(n: int) -> bool:
            return codes.count("OK") >= n

        await wait_for(lambda: answered(30), 60, "the first answers under load")
        os.kill(killed, signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + 60
        while _engine_pid(server) in (None, killed) or await _health(channel) != SERVING:
            assert time.monotonic() < deadline, "no new engine process within 60 s"
            statuses.append(await _health(channel))
            await asyncio.sleep(0.02)
        ok_before = codes.count("OK")
        await wait_for(lambda: answered(ok_before + 30), 60, "answers from the new engine")
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 60)  # no call hangs
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        assert set(codes) <= {"OK", "UNAVAILABLE"}, Counter(codes)
        assert codes.count("UNAVAILABLE") >= 1
        assert not _alive(killed) and _engine_pid(server) != killed
        port = server.metrics_port
        assert await metric(port, "seq2seq_engine_restarts_total", reason="exited") == 1
        assert await metric(port, "seq2seq_engine_up", group="default") == 1
        info = await metric(
            port, "seq2seq_model_info", model="translate-en-fr", provider="CPUExecutionProvider"
        )
        assert info == 1  # provider label and all, as before the crash
    assert any("killed by SIGKILL" in r.getMessage() for r in caplog.records)


@on_session_loop
async def test_a_hung_engine_is_killed_by_the_heartbeat_and_replaced() -> None:
    async with _serving() as (server, channel):
        stub = pb_grpc.Seq2SeqStub(channel)
        await stub.Summarize(pb.SummarizeRequest(text=TEXT), timeout=30)
        hung = _engine_pid(server)
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)  # alive, but answers nothing
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Summarize(pb.SummarizeRequest(text=TEXT), timeout=30)
        finally:
            if _alive(hung):
                os.kill(hung, signal.SIGKILL)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        async def back() -> bool:
            return _engine_pid(server) not in (None, hung) and await _health(channel) == SERVING

        await wait_for(back, 60, "a new engine process")
        again = await stub.Summarize(pb.SummarizeRequest(text=TEXT), timeout=30)
        assert again.hypotheses[0].text
        restarts = await metric(server.metrics_port, "seq2seq_engine_restarts_total", reason="hung")
        assert restarts == 1


@pytest.mark.parametrize(
    ("signum", "frontends"),
    [
        (signal.SIGKILL, 1),
        (signal.SIGTERM, 1),
        (signal.SIGINT, 1),
        (signal.SIGKILL, 2),
        (signal.SIGTERM, 2),
    ],
)
def test_no_engine_process_outlives_the_server(tmp_path: Path, signum: int, frontends: int) -> None:
    """Engine processes (and follower front ends) end with the server, however it ends."""
    config = tmp_path / "config.yaml"
    config.write_text(f"frontend_processes: {frontends}\n")
    process, port = _start(tmp_path, "--config", str(config))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.Seq2SeqStub(channel)
            assert stub.Summarize(pb.SummarizeRequest(text=TEXT), timeout=30).hypotheses
        children = [
            int(pid)
            for task in Path(f"/proc/{process.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        assert len(children) == frontends, "an engine process and the follower front ends"
        process.send_signal(signum)
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in children)
    finally:
        if process.poll() is None:
            process.kill()


@on_session_loop
async def test_undecodable_messages_are_dropped_and_counted() -> None:
    async with _serving() as (server, channel):
        stub = pb_grpc.Seq2SeqStub(channel)
        assert isinstance(server.backend, ProcessBackend)
        address = server.backend.group("default").address
        stranger = zmq.Context.instance().socket(zmq.DEALER)
        stranger.setsockopt(zmq.LINGER, 0)
        stranger.connect(address)
        try:
            stranger.send(b"\xc1")  # not MessagePack
            stranger.send(pickle.dumps(RuntimeError("boom")))  # a pickle is refused too
            stranger.send_multipart([b"two", b"frames"])
            stranger.send(b"\x92\xa6submit\x01")  # a submit cut short

            async def counted() -> bool:
                found = await metric(
                    server.metrics_port, "seq2seq_ipc_dropped_total", side="engine"
                )
                return (found or 0) >= 4

            await wait_for(counted, 30, "the engine to count four dropped messages")
        finally:
            stranger.close()
        response = await stub.Translate(pb.TranslateRequest(text=TEXT, target_language="fr"))
        assert response.hypotheses[0].text
        assert _engine_pid(server) is not None  # still the same process, still serving


@on_session_loop
async def test_a_full_engine_queue_answers_resource_exhausted_at_once() -> None:
    async with _serving(max_batch_size=1, max_queue_size=2) as (server, channel):
        stub = pb_grpc.Seq2SeqStub(channel)
        options = pb.DecodingOptions(min_output_tokens=40, max_output_tokens=48)
        calls = [
            stub.Summarize(pb.SummarizeRequest(text=TEXT, options=options), timeout=60)
            for _ in range(16)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        await assert_load_shed(results, server.metrics_port)


@on_session_loop
async def test_a_cancelled_stream_leaves_the_engine_batch() -> None:
    async with _serving() as (server, channel):
        stub = pb_grpc.Seq2SeqStub(channel)
        options = pb.DecodingOptions(min_output_tokens=47, max_output_tokens=48)
        stream = stub.SummarizeStream(pb.SummarizeRequest(text=TEXT, options=options))
        async for event in stream:
            assert event.HasField("token")
            stream.cancel()
            break
        port = server.metrics_port

        async def left() -> bool:
            cancelled = await metric(
                port, "seq2seq_requests_finished_total", model="summarize-en", status="cancelled"
            )
            inflight = await metric(port, "seq2seq_inflight_requests", model="summarize-en")
            return bool(cancelled) and not inflight

        await wait_for(left, 30, "the cancelled request to leave the engine's batch")


@on_session_loop
async def test_model_groups_run_in_their_own_processes_and_fail_alone() -> None:
    async with _serving(engine_groups={"summarize-en": "summaries"}) as (server, channel):
        stub = pb_grpc.Seq2SeqStub(channel)
        pids = server.backend.engine_pids()
        assert set(pids) == {"default", "summaries"} and len(set(pids.values())) == 2
        os.kill(pids["summaries"], signal.SIGKILL)

        async def summaries_down() -> bool:
            return await _health(channel, f"{SERVICE_NAME}/summarize-en") != SERVING

        await wait_for(summaries_down, 10, "summarize-en to report NOT_SERVING")
        assert await _health(channel, f"{SERVICE_NAME}/translate-en-fr") == SERVING
        assert await _health(channel) == SERVING  # other models still serve
        translated = await stub.Translate(pb.TranslateRequest(text=TEXT, target_language="fr"))
        assert translated.hypotheses[0].text

        async def summaries_back() -> bool:
            return await _health(channel, f"{SERVICE_NAME}/summarize-en") == SERVING

        await wait_for(summaries_back, 60, "summarize-en to serve again")
        assert (await stub.Summarize(pb.SummarizeRequest(text=TEXT))).hypotheses[0].text
        assert server.backend.engine_pids()["default"] == pids["default"]


@on_session_loop
async def test_static_batching_reaches_the_engine_process_and_decodes_the_same() -> None:
    texts = [f"{TEXT} Number {i}." for i in range(6)]

    async def translate_all(**overrides: object) -> list[str]:
        async with _serving(**overrides) as (_, channel):
            stub = pb_grpc.Seq2SeqStub(channel)
            replies = await asyncio.gather(
                *(stub.Translate(pb.TranslateRequest(text=t, target_language="fr")) for t in texts)
            )
        return [r.hypotheses[0].text for r in replies]

    assert await translate_all(continuous_batching=False) == await translate_all()
