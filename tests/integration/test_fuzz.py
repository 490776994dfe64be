"""Property-based fuzzing of the live server: any request gets OK or a documented status.

A hypothesis-driven client runs in a worker thread with a blocking channel while the
session server keeps serving on the event loop. Examples are derandomized so CI is
repeatable; raise FUZZ_EXAMPLES locally for a longer hunt.
"""

from __future__ import annotations

import asyncio
import os

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from tests.integration.conftest import metric

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
WARM_UP = 30
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
RSS_SLACK_BYTES = 50 * 1024 * 1024
UINT32 = 2**32 - 1

# Half of the draws are plausible (they reach the decoder), half are wild.
plausible_texts = st.text(
    alphabet=st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=60
).filter(str.strip)
wild_texts = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=400),
    st.sampled_from(["", " ", "\x00", "\u200b", "x" * 4001, "word " * 300]),
)
small_or_huge = st.one_of(st.integers(0, 10), st.integers(0, UINT32))
plausible_options = st.builds(
    pb.DecodingOptions,
    beam_size=st.integers(0, 4),
    n_best=st.integers(0, 1),
    max_output_tokens=st.integers(0, 24),
    length_penalty=st.floats(0.0, 2.0, width=32),
    return_attention=st.booleans(),
    return_scores=st.booleans(),
)
wild_options = st.builds(
    pb.DecodingOptions,
    model=st.one_of(
        st.sampled_from(["", "summarize-en", "translate-en-fr", "answer-en"]),
        st.text(max_size=30),
    ),
    model_version=st.one_of(st.integers(0, 2), st.integers(0, UINT32)),
    beam_size=small_or_huge,
    n_best=small_or_huge,
    max_output_tokens=st.one_of(st.integers(0, 16), st.integers(0, UINT32)),
    length_penalty=st.floats(width=32, allow_nan=True, allow_infinity=True),
    return_attention=st.booleans(),
    return_scores=st.booleans(),
)


def _requests(
    texts: st.SearchStrategy[str],
    options: st.SearchStrategy[pb.DecodingOptions],
    languages: st.SearchStrategy[str],
) -> st.SearchStrategy[tuple[str, object]]:
    return st.one_of(
        st.tuples(
            st.just("Translate"),
            st.builds(
                pb.TranslateRequest,
                text=texts,
                source_language=languages,
                target_language=st.just("fr") if languages is PLAUSIBLE_SOURCE else languages,
                options=options,
            ),
        ),
        st.tuples(
            st.just("Summarize"), st.builds(pb.SummarizeRequest, text=texts, options=options)
        ),
        st.tuples(
            st.just("Answer"),
            st.builds(pb.AnswerRequest, question=texts, context=texts, options=options),
        ),
        st.tuples(
            st.just("SummarizeStream"), st.builds(pb.SummarizeRequest, text=texts, options=options)
        ),
    )


PLAUSIBLE_SOURCE = st.sampled_from(["", "en", "EN "])
WILD_LANGUAGES = st.one_of(st.sampled_from(["", "fr", "de", "zz", "\x07"]), st.text(max_size=5))
calls = st.one_of(
    _requests(plausible_texts, plausible_options, PLAUSIBLE_SOURCE),
    _requests(st.one_of(plausible_texts, wild_texts), wild_options, WILD_LANGUAGES),
    _requests(wild_texts, plausible_options, WILD_LANGUAGES),
)


def _call(stub: pb_grpc.Seq2SeqStub, method: str, request: object) -> grpc.StatusCode:
    try:
        reply = getattr(stub, method)(request, timeout=30)
        if method.endswith("Stream"):
            list(reply)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def _fuzz(port: int, examples: int) -> list[str]:
    """Run `examples` random calls; return a description of every undocumented reply."""
    surprises: list[str] = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.Seq2SeqStub(channel)

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(calls)
        def one(call: tuple[str, object]) -> None:
            method, request = call
            code = _call(stub, method, request)
            if code not in DOCUMENTED:
                surprises.append(f"{method} -> {code.name}: {request!r}"[:500])
            assert code in DOCUMENTED, surprises[-1]

        one()
        health = pb.ListModelsRequest()
        assert stub.ListModels(health, timeout=10).models  # still serving
    return surprises


async def _rss(port: int) -> float:
    value = await metric(port, "process_resident_memory_bytes")
    assert value is not None, "the server exports no process_resident_memory_bytes"
    return value


async def test_random_requests_get_documented_statuses_and_memory_stays_flat(server) -> None:
    await asyncio.to_thread(_fuzz, server.port, WARM_UP)
    before = await _rss(server.metrics_port)
    surprises = await asyncio.to_thread(_fuzz, server.port, EXAMPLES)
    after = await _rss(server.metrics_port)
    assert not surprises
    assert after - before < RSS_SLACK_BYTES, f"RSS grew {(after - before) / 2**20:.1f} MiB"
