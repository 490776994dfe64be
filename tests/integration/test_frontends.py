"""Several front-end processes on one port (`frontend_processes`): they share the engines,
one /metrics carries all their calls, engine death reaches every one of them, a dead one
is started again, and hot reload reaches them all."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.server.server import Seq2SeqServer
from tests.integration.conftest import add_version, copy_repository, make_settings, metric, wait_for
from tests.integration.test_engine_process import FAST, TEXT, _client

on_session_loop = pytest.mark.asyncio(loop_scope="session")

CONNECTIONS = 16  # separate connections: the kernel spreads them over the front ends
TRANSLATE = {"grpc_method": "Translate", "grpc_code": "OK"}


@asynccontextmanager
async def _serving(**overrides: object) -> AsyncIterator[Seq2SeqServer]:
    server = Seq2SeqServer(make_settings(**{**FAST, "frontend_processes": 3, **overrides}))
    await server.start()
    try:
        assert server.frontends is not None
        yield server
    finally:
        await server.drain_and_stop(grace=5.0)


@asynccontextmanager
async def _stubs(port: int) -> AsyncIterator[list[pb_grpc.Seq2SeqStub]]:
    """One stub per connection (a local subchannel pool: no connection is shared)."""
    channels = [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(CONNECTIONS)
    ]
    try:
        yield [pb_grpc.Seq2SeqStub(c) for c in channels]
    finally:
        await asyncio.gather(*(c.close() for c in channels))


async def _translate_everywhere(stubs: list[pb_grpc.Seq2SeqStub], **options: int) -> list[str]:
    replies = await asyncio.gather(
        *(
            stub.Translate(
                pb.TranslateRequest(
                    text=TEXT, target_language="fr", options=pb.DecodingOptions(**options)
                ),
                timeout=30,
            )
            for stub in stubs
        )
    )
    return [r.hypotheses[0].text for r in replies]


@on_session_loop
async def test_front_ends_share_the_port_the_engines_and_one_metrics_endpoint() -> None:
    async with _serving() as server, _stubs(server.port) as stubs:
        assert server.frontends is not None and len(server.frontends.pids()) == 2
        texts = await _translate_everywhere(stubs)
        assert len(set(texts)) == 1 and texts[0]  # one engine, one answer
        own = server.metrics.registry.get_sample_value(
            "grpc_server_handled_total",
            {"grpc_type": "unary", "grpc_service": "seq2seq.v1.Seq2Seq", **TRANSLATE},
        )
        assert (own or 0) < CONNECTIONS  # the followers answered some of the calls

        async def all_counted() -> bool:
            return (
                await metric(server.metrics_port, "grpc_server_handled_total", **TRANSLATE)
                == CONNECTIONS
            )

        await wait_for(all_counted, 30, "every front end's calls on the one /metrics")
        engine = await metric(
            server.metrics_port, "seq2seq_requests_finished_total", model="translate-en-fr"
        )
        assert engine == CONNECTIONS  # the engine's own count, forwarded over its IPC


@on_session_loop
async def test_engine_death_reaches_every_front_end() -> None:
    async with _serving() as server, _stubs(server.port) as stubs:
        codes: list[str] = []
        stop = asyncio.Event()
        clients = [asyncio.create_task(_client(stub, stop, codes)) for stub in stubs]

        async def answered(n: int) -> bool:
            return codes.count("OK") >= n

        await wait_for(lambda: answered(40), 60, "answers under load")
        killed = server.backend.engine_pids()["default"]
        os.kill(killed, signal.SIGKILL)

        async def replaced() -> bool:
            pid = server.backend.engine_pids().get("default")
            return pid not in (None, killed)

        await wait_for(replaced, 60, "a new engine process")
        ok_before = codes.count("OK")
        await wait_for(lambda: answered(ok_before + 40), 60, "answers from the new engine")
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 60)  # no call hangs
        assert set(codes) <= {"OK", "UNAVAILABLE"}, set(codes)
        assert codes.count("UNAVAILABLE") >= 1
        await _translate_everywhere(stubs)  # every connection, every front end, serves again


@on_session_loop
async def test_a_dead_front_end_is_started_again_and_its_counts_are_kept() -> None:
    async with _serving(frontend_processes=2) as server:
        pool = server.frontends
        assert pool is not None
        async with _stubs(server.port) as stubs:
            await _translate_everywhere(stubs)

        async def all_counted() -> bool:
            return (
                await metric(server.metrics_port, "grpc_server_handled_total", **TRANSLATE)
                == CONNECTIONS
            )

        await wait_for(all_counted, 30, "every call counted")
        (dead,) = pool.pids().values()
        os.kill(dead, signal.SIGKILL)

        async def restarted() -> bool:
            return bool(pool.pids()) and dead not in pool.pids().values()

        await wait_for(restarted, 60, "the front end to be started again")
        async with _stubs(server.port) as stubs:
            await _translate_everywhere(stubs)

        async def counted_again() -> bool:
            found = await metric(server.metrics_port, "grpc_server_handled_total", **TRANSLATE)
            return found == 2 * CONNECTIONS

        await wait_for(counted_again, 30, "the counts of before and after the restart")


@on_session_loop
async def test_hot_reload_reaches_every_front_end(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path, "translate-en-fr")
    async with _serving(model_repository=repo, repository_poll_interval=0.2) as server:
        add_version(repo, "translate-en-fr", 2)
        async with _stubs(server.port) as stubs:

            async def everyone_has_version_2() -> bool:
                try:
                    await _translate_everywhere(stubs, model_version=2)
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.NOT_FOUND, error
                    return False
                return True

            await wait_for(everyone_has_version_2, 60, "version 2 on every front end")
