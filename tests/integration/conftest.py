"""A real server on a loopback port over the committed default bundles, and a real client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from service.api.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.api.server import Seq2SeqServer
from service.settings import Settings
from tests.conftest import TEST_MODELS


def make_settings(**overrides: object) -> Settings:
    fields: dict[str, object] = {
        "model_repository": TEST_MODELS,
        "host": "127.0.0.1",
        "port": 0,
        "metrics_host": "127.0.0.1",
        "metrics_port": 0,
        "providers": ("cpu",),
        "intra_op_threads": 1,
        "drain_grace_period": 5.0,
    }
    fields.update(overrides)
    return Settings(**fields)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server() -> AsyncIterator[Seq2SeqServer]:
    instance = Seq2SeqServer(make_settings())
    await instance.start()
    yield instance
    await instance.drain_and_stop(grace=2.0)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def channel(server: Seq2SeqServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        yield chan


@pytest.fixture(scope="session")
def stub(channel: grpc.aio.Channel) -> pb_grpc.Seq2SeqStub:
    return pb_grpc.Seq2SeqStub(channel)
