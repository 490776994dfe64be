"""Every protocol is a converter over the same front door: each decoding option of the
proto sent over gRPC and over HTTP (and LibreTranslate's API where it has the option) gives
the same result, and the same mistake gets the same status and message everywhere."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import grpc
import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.types import DecodeOptions
from service.api.status import GRPC_CODES
from service.errors import ErrorCode
from service.http.errors import HTTP_STATUS
from service.params import OPTION_NAMES
from tests.integration.conftest import http

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPTION_FIELDS = [field.name for field in pb.DecodingOptions.DESCRIPTOR.fields]
TEXT = "Lua bindings for Pure Data"
QUESTION = "Who maintains xfonts-terminus?"
CONTEXT = "xfonts-terminus is a Debian package in the fonts section. It is maintained by Anton."

# A request that shows what each option does (sampling with a seed, so it repeats). An option
# without a case here (a new one) is sent with its proto default: every protocol must take it.
CASES: dict[str, dict[str, Any]] = {
    "model": {"model": "translate-en-fr"},
    "model_version": {"model_version": 1},
    "beam_size": {"beam_size": 3},
    "n_best": {"beam_size": 3, "n_best": 2},
    "max_output_tokens": {"max_output_tokens": 3},
    "length_penalty": {"beam_size": 3, "length_penalty": 1.0},
    "return_attention": {"return_attention": True},
    "return_scores": {"return_scores": True},
    "min_output_tokens": {"min_output_tokens": 12},
    "temperature": {"temperature": 1.5, "seed": 5},
    "top_k": {"top_k": 5, "seed": 5},
    "top_p": {"top_p": 0.9, "seed": 5},
    "seed": {"seed": 5},
    "extractive": {"extractive": False},  # on by default for the answer model
    "target_prefix": {"target_prefix": "Bibliothèque"},
    "protected_terms": {"protected_terms": ["Lua"]},
    "glossary": {"glossary": {"Data": "données"}},
}
ANSWERING = {"extractive"}  # options sent to Answer rather than Translate


def _case(name: str) -> dict[str, Any]:
    if name in CASES:
        return CASES[name]
    field = pb.DecodingOptions.DESCRIPTOR.fields_by_name[name]
    return {name: pb.DecodingOptions().__getattribute__(field.name)}


def _options_pb(options: dict[str, Any]) -> pb.DecodingOptions:
    return pb.DecodingOptions(**options)


def _hypotheses_pb(hypotheses: Any) -> list[dict[str, Any]]:
    rows = []
    for h in hypotheses:
        attention = None
        if h.attention.rows:
            weights = list(h.attention.weights)
            attention = [
                weights[r * h.attention.cols : (r + 1) * h.attention.cols]
                for r in range(h.attention.rows)
            ]
        rows.append(
            {
                "text": h.text,
                "target_tokens": list(h.target_tokens),
                "token_scores": list(h.token_scores),
                "score": h.score,
                "attention": attention,
            }
        )
    return rows


def _same(grpc_rows: list[dict[str, Any]], http_rows: list[dict[str, Any]]) -> None:
    assert [r["text"] for r in grpc_rows] == [r["text"] for r in http_rows]
    for a, b in zip(grpc_rows, http_rows, strict=True):
        assert a["target_tokens"] == b["target_tokens"]
        assert a["token_scores"] == pytest.approx(b["token_scores"], abs=1e-4)
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
        assert (a["attention"] is None) == (b["attention"] is None)
        if a["attention"] is not None:
            for row_a, row_b in zip(a["attention"], b["attention"], strict=True):
                assert row_a == pytest.approx(row_b, abs=1e-3)


async def _post(server: Any, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await asyncio.to_thread(http, server.http_port, path, body)


async def test_every_protocol_names_the_same_options() -> None:
    """The proto, the options type, the SDK's DecodeOptions and HTTP's options agree."""
    assert set(OPTION_FIELDS) == {"model", "model_version", *OPTION_NAMES}
    assert [f.name for f in dataclasses.fields(DecodeOptions)] == OPTION_FIELDS


async def test_http_describes_every_option(server) -> None:
    status, schema = await asyncio.to_thread(http, server.http_port, "/openapi.json")
    assert status == 200
    assert sorted(schema["components"]["schemas"]["Options"]["properties"]) == sorted(OPTION_FIELDS)


@pytest.mark.parametrize("name", OPTION_FIELDS)
async def test_each_option_gives_the_same_result_over_grpc_and_http(server, stub, name) -> None:
    options = {**_case(name), "return_scores": True}  # HTTP then returns every hypothesis
    if name in ANSWERING:
        reply = await stub.Answer(
            pb.AnswerRequest(question=QUESTION, context=CONTEXT, options=_options_pb(options)),
            timeout=30,
        )
        status, body = await _post(
            server, "/v1/answer", {"question": QUESTION, "context": CONTEXT, "options": options}
        )
        assert status == 200, body
        assert (reply.answer, reply.answerable) == (body["answer"], body["answerable"])
        _same(_hypotheses_pb(reply.hypotheses), body["hypotheses"])
        return
    reply = await stub.Translate(
        pb.TranslateRequest(text=TEXT, target_language="fr", options=_options_pb(options)),
        timeout=30,
    )
    status, body = await _post(
        server, "/v1/translate", {"text": TEXT, "target_language": "fr", "options": options}
    )
    assert status == 200, body
    (part,) = body["parts"]
    assert reply.hypotheses[0].text == body["text"]
    _same(_hypotheses_pb(reply.hypotheses), part["hypotheses"])


async def test_libretranslate_alternatives_are_a_beam_that_wide(server, stub) -> None:
    options = pb.DecodingOptions(beam_size=3, n_best=3)
    reply = await stub.Translate(
        pb.TranslateRequest(text=TEXT, target_language="fr", options=options), timeout=30
    )
    status, body = await _post(
        server, "/translate", {"q": TEXT, "source": "en", "target": "fr", "alternatives": 2}
    )
    assert status == 200, body
    assert body["translatedText"] == reply.hypotheses[0].text
    assert body["alternatives"] == [h.text for h in reply.hypotheses[1:]]


async def test_the_prefix_that_http_once_refused(server) -> None:
    status, body = await _post(
        server,
        "/v1/translate",
        {"text": TEXT, "target_language": "fr", "options": {"target_prefix": "Bibliothèque"}},
    )
    assert status == 200, body
    assert body["text"].startswith("Bibliothèque")


# --- the same mistake, the same answer ---------------------------------------------------
# (what is wrong, the gRPC call, the HTTP path and body, LibreTranslate's body or None)
MISTAKES: list[tuple[str, str, Any, str, dict[str, Any], dict[str, Any] | None]] = [
    (
        "empty text",
        "Translate",
        pb.TranslateRequest(text=" \u200b", target_language="fr"),
        "/v1/translate",
        {"text": " \u200b", "target_language": "fr"},
        {"q": " \u200b", "source": "en", "target": "fr"},
    ),
    (
        "a control character",
        "Translate",
        pb.TranslateRequest(text="hello\x00world", target_language="fr"),
        "/v1/translate",
        {"text": "hello\x00world", "target_language": "fr"},
        {"q": "hello\x00world", "source": "en", "target": "fr"},
    ),
    (
        "no model for the pair",
        "Translate",
        pb.TranslateRequest(text=TEXT, target_language="zz"),
        "/v1/translate",
        {"text": TEXT, "target_language": "zz"},
        {"q": TEXT, "source": "en", "target": "zz"},
    ),
    (
        "a beam above the cap",
        "Translate",
        pb.TranslateRequest(
            text=TEXT, target_language="fr", options=pb.DecodingOptions(beam_size=99, n_best=99)
        ),
        "/v1/translate",
        {"text": TEXT, "target_language": "fr", "options": {"beam_size": 99, "n_best": 99}},
        {"q": TEXT, "source": "en", "target": "fr", "alternatives": 98},
    ),
    (
        "n_best above the beam",
        "Translate",
        pb.TranslateRequest(
            text=TEXT, target_language="fr", options=pb.DecodingOptions(beam_size=2, n_best=3)
        ),
        "/v1/translate",
        {"text": TEXT, "target_language": "fr", "options": {"beam_size": 2, "n_best": 3}},
        None,
    ),
    (
        "top_p above 1",
        "Summarize",
        pb.SummarizeRequest(text=TEXT, options=pb.DecodingOptions(top_p=2.0)),
        "/v1/summarize",
        {"text": TEXT, "options": {"top_p": 2.0}},
        None,
    ),
    (
        "a temperature of 0",
        "Summarize",
        pb.SummarizeRequest(text=TEXT, options=pb.DecodingOptions(temperature=0.0)),
        "/v1/summarize",
        {"text": TEXT, "options": {"temperature": 0.0}},
        None,
    ),
    (
        "a prefix the vocabulary cannot spell",
        "Translate",
        pb.TranslateRequest(
            text=TEXT, target_language="fr", options=pb.DecodingOptions(target_prefix="中文")
        ),
        "/v1/translate",
        {"text": TEXT, "target_language": "fr", "options": {"target_prefix": "中文"}},
        None,
    ),
    (
        "an unknown model",
        "Summarize",
        pb.SummarizeRequest(text=TEXT, options=pb.DecodingOptions(model="nope")),
        "/v1/summarize",
        {"text": TEXT, "options": {"model": "nope"}},
        None,
    ),
    (
        "no context",
        "Answer",
        pb.AnswerRequest(question=QUESTION),
        "/v1/answer",
        {"question": QUESTION},
        None,
    ),
    (
        "too many texts",
        "Translate",
        pb.TranslateRequest(texts=["a"] * 129, target_language="fr"),
        "/v1/translate",
        {"texts": ["a"] * 129, "target_language": "fr"},
        {"q": ["a"] * 129, "source": "en", "target": "fr"},
    ),
    (
        "an unknown format",
        "Translate",
        pb.TranslateRequest(text=TEXT, target_language="fr", format="pdf"),
        "/v1/translate",
        {"text": TEXT, "target_language": "fr", "format": "pdf"},
        {"q": TEXT, "source": "en", "target": "fr", "format": "pdf"},
    ),
    (
        "nothing to detect",
        "Detect",
        pb.DetectRequest(text="  "),
        "/v1/detect",
        {"text": "  "},
        None,
    ),
]
LIBRETRANSLATE_NAMES = {"text": "q", "texts": "q", "target_language": "target"}


@pytest.mark.parametrize(
    ("what", "rpc", "request_pb", "path", "body", "libretranslate"),
    MISTAKES,
    ids=[m[0] for m in MISTAKES],
)
async def test_the_same_mistake_gets_the_same_answer(
    server, stub, what, rpc, request_pb, path, body, libretranslate
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request_pb, timeout=30)
    code, message = caught.value.code(), caught.value.details()
    status, answer = await _post(server, path, body)
    expected_status = {GRPC_CODES[c]: HTTP_STATUS[c] for c in ErrorCode}[code]
    assert (status, answer["error"]) == (expected_status, message), what
    if libretranslate is None:
        return
    status, answer = await _post(server, "/translate", libretranslate)
    for ours, theirs in LIBRETRANSLATE_NAMES.items():
        message = message.replace(f"{ours} ", f"{theirs} ")
    assert (status, answer["error"]) == (expected_status, message), what
