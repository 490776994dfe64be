"""Grounded output through the running server: extractive answers, target prefixes,
protected terms, and their bad input."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from benchmarks.protected_terms import technical_terms
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from tests.conftest import heldout

pytestmark = pytest.mark.asyncio(loop_scope="session")

README_CONTEXT = (
    "xfonts-terminus is a Debian package in the fonts section. It is maintained by Anton Zinoviev."
)


def _answer(question: str, context: str, **options: object) -> pb.AnswerRequest:
    return pb.AnswerRequest(
        question=question, context=context, options=pb.DecodingOptions(**options)
    )


async def test_the_readme_question_is_answered_from_its_context(stub) -> None:
    reply = await stub.Answer(_answer("Who maintains xfonts-terminus?", README_CONTEXT))
    assert reply.answer == "Anton Zinoviev"


@pytest.mark.parametrize(
    "options", [{}, {"beam_size": 4, "n_best": 4}, {"seed": 11, "temperature": 1.5}]
)
async def test_every_answer_is_a_span_of_its_context(stub, options) -> None:
    records = heldout("answer")
    replies = await asyncio.gather(
        *(stub.Answer(_answer(r["question"], r["context"], **options)) for r in records)
    )
    for record, reply in zip(records, replies, strict=True):
        for hypothesis in reply.hypotheses:
            if hypothesis.target_tokens[:1] == ["<noans>"]:
                continue
            assert hypothesis.text and hypothesis.text in record["context"], hypothesis.text


async def test_a_target_prefix_starts_every_hypothesis_in_a_mixed_batch(stub) -> None:
    texts = [r["source"] for r in heldout("translate-en-fr")][:6]
    calls = [
        stub.Translate(
            pb.TranslateRequest(
                text=text,
                target_language="fr",
                options=pb.DecodingOptions(target_prefix="Bibliothèque", **options),
            )
        )
        for text in texts
        for options in ({}, {"beam_size": 3, "n_best": 3})
    ]
    calls += [stub.Translate(pb.TranslateRequest(text=t, target_language="fr")) for t in texts]
    replies = await asyncio.gather(*calls)
    for reply in replies[: 2 * len(texts)]:
        assert all(h.text.startswith("Bibliothèque") for h in reply.hypotheses)


async def test_protected_terms_reach_every_hypothesis_verbatim(stub) -> None:
    kept, total = 0, 0
    for pair in ("translate-en-fr", "translate-en-de", "translate-en-it"):
        for record in heldout(pair):
            terms = technical_terms(record["source"])
            if not terms:
                continue
            for options in ({}, {"beam_size": 4, "n_best": 2}):
                reply = await stub.Translate(
                    pb.TranslateRequest(
                        text=record["source"],
                        target_language=pair[-2:],
                        options=pb.DecodingOptions(protected_terms=terms, **options),
                    )
                )
                for hypothesis in reply.hypotheses:
                    total += len(terms)
                    kept += sum(term in hypothesis.text for term in terms)
    assert total > 40 and kept == total


async def test_a_glossary_puts_its_target_term_in_the_output(stub) -> None:
    reply = await stub.Translate(
        pb.TranslateRequest(
            text="Lua bindings for Pure Data",
            target_language="fr",
            options=pb.DecodingOptions(glossary={"bindings": "interfaces"}),
        )
    )
    assert "interfaces" in reply.hypotheses[0].text


@pytest.mark.parametrize(
    ("request_message", "method", "field", "words"),
    [
        (
            pb.SummarizeRequest(text="a tool", options=pb.DecodingOptions(extractive=True)),
            "Summarize",
            "options.extractive",
            "no context part",
        ),
        (
            pb.TranslateRequest(
                text="a tool",
                target_language="fr",
                options=pb.DecodingOptions(target_prefix="mot " * 200),
            ),
            "Translate",
            "options.target_prefix",
            "output limit",
        ),
        (
            pb.TranslateRequest(
                text="a tool",
                target_language="fr",
                options=pb.DecodingOptions(target_prefix="\u0f40\u0f41"),
            ),
            "Translate",
            "options.target_prefix",
            "cannot be spelt",
        ),
        (
            pb.TranslateRequest(
                text="a tool for files",
                target_language="fr",
                options=pb.DecodingOptions(protected_terms=["SOCKS4/5"]),
            ),
            "Translate",
            "options.protected_terms[0]",
            "does not occur",
        ),
        (
            pb.TranslateRequest(
                text="a tool for Pure Data files",
                target_language="fr",
                options=pb.DecodingOptions(protected_terms=["Pure Data", "Data files"]),
            ),
            "Translate",
            "options.protected_terms[1]",
            "overlaps",
        ),
    ],
    ids=[
        "extractive-no-context",
        "prefix-too-long",
        "prefix-unspellable",
        "term-absent",
        "terms-overlap",
    ],
)
async def test_bad_grounding_options_are_invalid_argument(
    stub, request_message, method, field, words
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(request_message, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details() and words in caught.value.details()
    still = await stub.Summarize(pb.SummarizeRequest(text="a small tool"), timeout=30)
    assert still.hypotheses[0].text
