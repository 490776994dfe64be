"""The drain's view of the gRPC traffic: calls in flight and quiet periods."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.api.traffic import Traffic

on_loop = pytest.mark.asyncio(loop_scope="session")


@on_loop
async def test_quiet_once_nothing_arrived_for_the_quiet_period() -> None:
    traffic = Traffic()
    assert traffic.started("seq2seq.v1.Seq2Seq", "Translate")
    traffic.finished()
    started = time.monotonic()
    assert await traffic.wait_quiet(0.1, deadline=started + 5)
    assert time.monotonic() - traffic.last_arrival >= 0.1


@on_loop
async def test_a_call_in_flight_holds_the_drain_until_the_deadline() -> None:
    traffic = Traffic()
    traffic.started("seq2seq.v1.Seq2Seq", "Summarize")
    assert not await traffic.wait_quiet(0.0, deadline=time.monotonic() + 0.1)
    assert traffic.in_flight == 1


@on_loop
async def test_arrivals_keep_resetting_the_quiet_period() -> None:
    traffic = Traffic()
    stop = asyncio.Event()

    async def client() -> None:
        while not stop.is_set():
            traffic.started("seq2seq.v1.Seq2Seq", "Answer")
            traffic.finished()
            await asyncio.sleep(0.02)

    task = asyncio.create_task(client())
    try:
        assert not await traffic.wait_quiet(0.1, deadline=time.monotonic() + 0.4)
    finally:
        stop.set()
        await task
    assert traffic.arrivals >= 10


@pytest.mark.parametrize(
    ("service", "method"),
    [
        ("grpc.health.v1.Health", "Watch"),
        ("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo"),
    ],
)
def test_connection_long_streams_count_as_arrivals_but_never_hold_a_drain(
    service: str, method: str
) -> None:
    traffic = Traffic()
    assert not traffic.started(service, method)
    assert traffic.in_flight == 0
    assert traffic.arrivals == 1
