"""A front end's link to an engine, against a real ZMQ socket standing where the engine
would: the link's request arrives as a Submit, the engine's answer reaches the caller's
listener, and bytes that are not a message are dropped and counted, never fatal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.asyncio

from service.engine.requests import GenerationOutput, Request, RequestStatus
from service.engine.strategies import Hypothesis
from service.engine_process import wire
from service.engine_process.async_bridge import LoopListener
from service.engine_process.link import EngineLink
from service.errors import Expired, Unavailable
from service.params import DecodingParams

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Drops:
    def __init__(self) -> None:
        self.counted: dict[str, int] = {}

    def ipc_dropped(self, side: str, count: int) -> None:
        self.counted[side] = self.counted.get(side, 0) + count


def _request(rid: str, stream: bool) -> Request:
    return Request(
        request_id=rid,
        source_ids=np.array([5, 6, 2], dtype=np.int64),
        params=DecodingParams(max_output_tokens=8),
        listener=LoopListener(stream),
    )


async def test_events_reach_their_listeners_and_garbage_is_counted(tmp_path: Path) -> None:
    context = zmq.asyncio.Context()
    engine = context.socket(zmq.ROUTER)  # where the engine process would be
    address = f"ipc://{tmp_path}/engine.sock"
    engine.bind(address)
    drops = Drops()
    others: list[wire.FromEngine] = []
    link = EngineLink("test", context, address, 0, drops, others.append, lambda o: None)
    try:
        identity, hello = await engine.recv_multipart()
        assert wire.decode_to_engine(hello) == wire.Hello(0)
        streamed, unary = _request("s1", stream=True), _request("u1", stream=False)
        link.submit(3, streamed)
        link.submit(3, unary)
        for request in (streamed, unary):
            _, raw = await engine.recv_multipart()
            message = wire.decode_to_engine(raw)
            assert isinstance(message, wire.Submitted) and message.rid == request.request_id
        assert link.waiting_on(3) == 2

        for garbage in (b"\xc1", b"\x92\xa5batch", wire.encode(wire.Hello(0))):
            await engine.send_multipart([identity, garbage])  # a Hello is not ours to get
        output = GenerationOutput(
            (Hypothesis((7,), (-0.5,), None, -0.5, "eos"),), RequestStatus.FINISHED_EOS, 0.0, 0.0
        )
        events = (
            wire.Token("s1", 0, 7, -0.5),
            wire.finished_message("s1", output),
            wire.failed_message("u1", Expired("late")),
            wire.Token("gone", 0, 1, 0.0),  # a request nobody waits for: ignored
        )
        await engine.send_multipart([identity, wire.encode(wire.Batch(events, ()))])
        await engine.send_multipart([identity, wire.encode(wire.Pong(1, 0.0, ()))])

        assert isinstance(streamed.listener, LoopListener) and streamed.listener.events
        token = await asyncio.wait_for(streamed.listener.events.get(), 10)
        assert token.token_id == 7  # type: ignore[union-attr]
        assert (await asyncio.wait_for(streamed.listener.result, 10)).token_ids == (7,)
        assert isinstance(unary.listener, LoopListener)
        with pytest.raises(Expired):
            await asyncio.wait_for(unary.listener.result, 10)
        while not others:
            await asyncio.sleep(0.01)  # the Pong comes after the batch, on the same socket
        assert others == [wire.Pong(1, 0.0, ())]
        assert drops.counted == {"frontend": 3}
        assert link.waiting_on(3) == 0
    finally:
        link.close()
        context.destroy(linger=0)


async def test_fail_ends_every_waiting_request(tmp_path: Path) -> None:
    context = zmq.asyncio.Context()
    address = f"ipc://{tmp_path}/nobody.sock"  # no engine: requests only wait
    link = EngineLink("test", context, address, 0, Drops(), lambda m: None, lambda o: None)
    try:
        requests = [_request(f"r{i}", stream=False) for i in range(3)]
        for request in requests:
            link.submit(1 + (request.request_id == "r2"), request)
        assert link.fail(Unavailable("gone"), slot=1) == 2
        assert link.fail(Unavailable("gone")) == 1
        for request in requests:
            assert isinstance(request.listener, LoopListener)
            with pytest.raises(Unavailable):
                await request.listener.result
    finally:
        link.close()
        context.destroy(linger=0)
