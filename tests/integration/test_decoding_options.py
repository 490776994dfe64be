"""Sampling and min_output_tokens through the running server (real gRPC on loopback)."""

from __future__ import annotations

import asyncio

import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from tests.conftest import heldout

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEXTS = [r["source"] for r in heldout("translate-en-fr")][:6]


def _translate(text: str, **options: object) -> pb.TranslateRequest:
    return pb.TranslateRequest(
        text=text, target_language="fr", options=pb.DecodingOptions(**options)
    )


async def _ids(stub, text: str, **options: object) -> list[str]:
    reply = await stub.Translate(_translate(text, **options), timeout=30)
    return list(reply.hypotheses[0].target_tokens)


async def test_a_seed_reproduces_its_sample_alone_and_inside_a_mixed_batch(stub) -> None:
    sampled = {"seed": 1234, "temperature": 1.3, "top_k": 50, "top_p": 0.95}
    alone = [await _ids(stub, text, **sampled) for text in TEXTS]
    # The same requests again, now sharing the batch with greedy, beam and other-seed calls.
    crowd = [
        *(_ids(stub, text, beam_size=4) for text in TEXTS),
        *(_ids(stub, text, seed=99, temperature=1.3) for text in TEXTS),
        *(_ids(stub, text) for text in TEXTS),
    ]
    results = await asyncio.gather(*(_ids(stub, t, **sampled) for t in TEXTS), *crowd)
    assert results[: len(TEXTS)] == alone
    greedy = results[-len(TEXTS) :]
    others = results[len(TEXTS) * 2 : len(TEXTS) * 3]
    assert alone != greedy  # sampling at temperature 1.3 really departs from the argmax
    assert others != alone  # another seed draws another output


async def test_min_output_tokens_forces_the_length(stub) -> None:
    free = await stub.Translate(_translate(TEXTS[0]), timeout=30)
    natural = len(free.hypotheses[0].target_tokens)
    forced = await stub.Translate(
        _translate(TEXTS[0], min_output_tokens=natural + 5, max_output_tokens=natural + 5),
        timeout=30,
    )
    hypothesis = forced.hypotheses[0]
    assert len(hypothesis.target_tokens) == natural + 5
    assert hypothesis.finish_reason == "length"
    beam = await stub.Translate(
        _translate(TEXTS[0], beam_size=3, min_output_tokens=natural + 3), timeout=30
    )
    assert len(beam.hypotheses[0].target_tokens) >= natural + 3


async def test_streamed_text_grows_incrementally_and_ends_as_the_unary_text(stub) -> None:
    unary = await stub.Translate(_translate(TEXTS[1]), timeout=30)
    texts = []
    async for event in stub.TranslateStream(_translate(TEXTS[1]), timeout=30):
        if event.HasField("token"):
            texts.append(event.token.text)
        else:
            final = event.result.hypotheses[0].text
    assert final == unary.hypotheses[0].text
    assert texts[-1] == final
    assert all(final.startswith(t.rstrip()) for t in texts)
