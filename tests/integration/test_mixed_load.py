"""Mixed greedy / beam / streaming load with cancellations and short deadlines.

Every call ends with a documented status, the server keeps serving, and once the load stops
no slot is leaked: queue depth and in-flight go back to zero.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.server.server import Seq2SeqServer
from tests.conftest import heldout
from tests.integration.conftest import make_settings, metric, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALLOWED = {"OK", "CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}


async def _one(stub: pb_grpc.Seq2SeqStub, i: int, texts: list[str]) -> str:
    text = texts[i % len(texts)]
    kind = i % 6
    try:
        if kind == 0:  # a deadline too short to finish
            await stub.Summarize(pb.SummarizeRequest(text=text), timeout=0.005)
        elif kind == 1:  # the client gives up mid-way
            call = stub.Summarize(pb.SummarizeRequest(text=text), timeout=30)
            await asyncio.sleep(0.002)
            call.cancel()
            await call
        elif kind == 2:  # a stream abandoned after its first event
            stream = stub.SummarizeStream(pb.SummarizeRequest(text=text), timeout=30)
            async for _ in stream:
                stream.cancel()
                break
        elif kind == 3:  # beam search
            options = pb.DecodingOptions(beam_size=3, n_best=2)
            response = await stub.Summarize(
                pb.SummarizeRequest(text=text, options=options), timeout=30
            )
            assert len(response.hypotheses) == 2
        elif kind == 4:  # a full stream
            events = [e async for e in stub.SummarizeStream(pb.SummarizeRequest(text=text))]
            assert events[-1].HasField("result")
        else:  # greedy
            await stub.Summarize(pb.SummarizeRequest(text=text), timeout=30)
        return "OK"
    except grpc.aio.AioRpcError as error:
        return error.code().name
    except asyncio.CancelledError:
        return "CANCELLED"


async def test_mixed_load_leaves_no_leaked_slots() -> None:
    server = Seq2SeqServer(make_settings(max_queue_size=48, max_batch_size=16))
    await server.start()
    texts = [r["source"] for r in heldout("summarize")]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.Seq2SeqStub(channel)
            outcomes: Counter[str] = Counter()
            for wave in range(3):
                results = await asyncio.gather(
                    *(_one(stub, wave * 200 + i, texts) for i in range(200))
                )
                outcomes.update(results)
            assert set(outcomes) <= ALLOWED, outcomes
            assert outcomes["OK"] >= 100, outcomes
            # 200 concurrent calls overflow 48 queued + 16 running: shed at once, by status
            assert outcomes["RESOURCE_EXHAUSTED"] > 0, outcomes
            port = server.metrics_port

            async def drained() -> bool:
                depth = await metric(port, "seq2seq_queue_depth", model="summarize-en")
                inflight = await metric(port, "seq2seq_inflight_requests", model="summarize-en")
                return not depth and not inflight

            await wait_for(drained, 30, "queue depth and in-flight to return to zero")
            response = await stub.Summarize(pb.SummarizeRequest(text=texts[0]), timeout=30)
            assert response.hypotheses[0].text
    finally:
        await server.drain_and_stop(grace=5.0)
