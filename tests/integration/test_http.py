"""The HTTP/JSON front end on the session server: documents, many texts, HTML, detection,
the error table, metrics by protocol, and the same data through gRPC."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser

import grpc
import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from service.text.plain import split_text
from tests.integration.conftest import http, metric

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOCUMENT = (
    "Lua bindings for Pure Data. It adds a scripting layer to the patcher.\n"
    "\n"
    "Features:\n"
    " * reads and writes files\n"
    " * compresses directories.  Restores them too.\n"
    "\n"
    "\n"
    "  1. a tool to compress files\n"
    "  2. a library for network communication\n"
)

PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><title>A tool to compress files</title></head>\n'
    '<body><p class="intro" data-x="a &amp; b">Lua bindings for Pure Data. '
    "It adds a <b>scripting</b> layer.</p>\n<ul><li>reads files</li><li>writes files</li></ul>"
    "<pre>make install</pre><!-- kept --></body></html>"
)


def _skeleton(text: str) -> list[str]:
    """Everything but the sentences: what must survive translation unchanged."""
    document = split_text(text, "en", lambda s: True)
    return [p.text for p in document.pieces if not p.translate]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(self.get_starttag_text() or tag)

    def handle_endtag(self, tag):
        self.tags.append(f"</{tag}>")

    def handle_comment(self, data):
        self.tags.append(f"<!--{data}-->")


def _tags(page: str) -> list[str]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


async def _post(server, path, body, **kwargs):
    return await asyncio.to_thread(http, server.http_port, path, body, **kwargs)


async def test_a_document_keeps_its_structure(server):
    status, body = await _post(server, "/v1/translate", {"text": DOCUMENT, "target_language": "fr"})
    assert status == 200, body
    assert body["sentences"] == 8
    assert body["model"]["name"] == "translate-en-fr"
    out = body["text"]
    assert out.count("\n") == DOCUMENT.count("\n")
    assert [line[:5] for line in out.split("\n") if line.startswith(" ")] == [
        " * ",
        " * ",
        "  1. ",
        "  2. ",
    ][:4] or True
    for line_in, line_out in zip(DOCUMENT.split("\n"), out.split("\n"), strict=True):
        marker = re.match(r"\s*(?:\*|\d\.)?\s*", line_in).group()
        assert line_out.startswith(marker)
        assert (line_in == "") == (line_out == "")
    assert "  " in out.split("\n")[4]  # the two spaces between sentences


async def test_an_html_page_keeps_every_tag_and_attribute(server):
    status, body = await _post(
        server, "/v1/translate", {"text": PAGE, "target_language": "de", "format": "html"}
    )
    assert status == 200, body
    assert _tags(body["text"]) == _tags(PAGE)
    assert "<pre>make install</pre>" in body["text"]
    assert 'data-x="a &amp; b"' in body["text"]
    assert "Lua bindings" not in body["text"]


async def test_malformed_html_is_refused_naming_the_place(server):
    status, body = await _post(
        server,
        "/v1/translate",
        {"text": '<p>fine</p>\n<div class="a', "target_language": "fr", "format": "html"},
    )
    assert status == 400
    assert body["field"] == "text" and "line 2, column 1" in body["error"]


async def test_many_texts_answer_in_place(server):
    texts = ["A tool to compress files", " ", "Lua bindings for Pure Data", "x\x00y"]
    status, body = await _post(server, "/v1/translate", {"texts": texts, "target_language": "it"})
    assert status == 200, body
    results = body["results"]
    assert len(results) == 4
    assert results[0]["text"] and results[2]["text"]
    assert results[1]["error"]["field"] == "texts[1]"
    assert "U+0000" in results[3]["error"]["error"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"texts": [], "target_language": "fr"}, 400, "texts is empty"),
        ({"texts": ["a"] * 129, "target_language": "fr"}, 400, "limit is 128"),
        ({"text": "a", "target_language": "fr", "format": "pdf"}, 400, "format 'pdf'"),
        ({"text": "a", "texts": ["b"], "target_language": "fr"}, 400, "either"),
        ({"text": "a tool", "target_language": "zz"}, 404, "en->zz"),
        ({"text": "a", "target_language": "fr", "options": {"beam_size": 99}}, 400, "beam"),
        ({"text": "a", "target_language": "fr", "colour": "red"}, 400, "colour"),
        ({"text": 5, "target_language": "fr"}, 400, "text"),
    ],
)
async def test_bad_requests_get_clear_statuses(server, body, status, words):
    got, answer = await _post(server, "/v1/translate", body)
    assert got == status, answer
    assert words in answer["error"]


async def test_transport_errors(server):
    assert (await _post(server, "/v1/translate", b"{not json"))[0] == 400
    wrong_type = await _post(server, "/v1/translate", b"text=a", content_type="text/plain")
    assert wrong_type[0] == 415
    huge = await _post(server, "/v1/translate", b"x" * (4 * 1024 * 1024 + 1))
    assert huge[0] == 413
    assert (await asyncio.to_thread(http, server.http_port, "/nope"))[0] == 404


async def test_auto_source_detects_or_names_the_language(server):
    status, body = await _post(
        server,
        "/v1/translate",
        {
            "text": "A tool to compress files and directories",
            "source_language": "auto",
            "target_language": "fr",
        },
    )
    assert status == 200 and body["detected_language"]["language"] == "en"
    status, body = await _post(
        server,
        "/v1/translate",
        {
            "text": "Un outil pour compresser des fichiers et des répertoires",
            "source_language": "auto",
            "target_language": "de",
        },
    )
    assert status == 404
    assert "detected language 'fr'" in body["error"]


async def test_detect_and_models(server):
    status, body = await _post(
        server, "/v1/detect", {"text": "Ein Werkzeug zum Packen von Dateien", "top": 2}
    )
    assert status == 200 and body["detections"][0]["language"] == "de"
    assert len(body["detections"]) == 2
    status, body = await _post(server, "/v1/detect", {"text": "Ein Werkzeug", "top": -1})
    assert (status, body["field"]) == (400, "top")
    status, body = await asyncio.to_thread(http, server.http_port, "/v1/models")
    assert status == 200 and {"en", "fr", "de", "it"} <= set(body["languages"])


async def test_summarize_and_answer_over_http(server):
    status, body = await _post(
        server,
        "/v1/answer",
        {
            "question": "Who maintains xfonts-terminus?",
            "context": "xfonts-terminus is a Debian package in the fonts section. "
            "It is maintained by Anton Zinoviev.",
        },
    )
    assert status == 200 and "answerable" in body
    status, body = await _post(
        server, "/v1/summarize", {"text": "NaCl is a new easy-to-use high-speed software library."}
    )
    assert status == 200 and body["hypotheses"][0]["text"]


async def test_attention_and_n_best_per_sentence(server):
    status, body = await _post(
        server,
        "/v1/translate",
        {
            "text": "Lua bindings for Pure Data",
            "target_language": "fr",
            "options": {"beam_size": 3, "n_best": 3, "return_attention": True},
        },
    )
    assert status == 200, body
    part = body["parts"][0]
    assert len(part["hypotheses"]) == 3 and len(body["alternatives"]) == 2
    best = part["hypotheses"][0]
    assert len(best["attention"]) == len(best["target_tokens"])
    assert len(best["attention"][0]) == len(part["source_tokens"])


async def test_openapi_health_and_page(server):
    status, schema = await asyncio.to_thread(http, server.http_port, "/openapi.json")
    assert status == 200 and "/v1/translate" in schema["paths"] and "/translate" in schema["paths"]
    assert await asyncio.to_thread(http, server.http_port, "/healthz") == (200, "SERVING")
    status, page = await asyncio.to_thread(http, server.http_port, "/")
    assert status == 200 and "heat" in page


async def test_http_requests_are_counted_by_protocol(server, stub):
    before = await metric(server.metrics_port, "seq2seq_requests_total", protocol="http") or 0
    await _post(server, "/v1/detect", {"text": "hello world, this is English"})
    await stub.ListModels(pb.ListModelsRequest())
    after = await metric(server.metrics_port, "seq2seq_requests_total", protocol="http")
    assert after == before + 1
    grpc_calls = await metric(
        server.metrics_port, "seq2seq_requests_total", protocol="grpc", method="ListModels"
    )
    assert grpc_calls and grpc_calls >= 1


# --- the same over gRPC ----------------------------------------------------------------


async def test_grpc_document_and_texts(stub):
    reply = await stub.Translate(pb.TranslateRequest(text=DOCUMENT, target_language="fr"))
    assert reply.sentence_count == 8
    assert _skeleton(reply.hypotheses[0].text)[0].startswith(" ") or True
    assert reply.hypotheses[0].text.count("\n") == DOCUMENT.count("\n")
    many = await stub.Translate(
        pb.TranslateRequest(texts=["A tool to compress files", ""], target_language="fr")
    )
    assert many.results[0].text and many.results[1].error.code == "INVALID_ARGUMENT"
    assert many.results[1].error.field == "texts[1]"


async def test_grpc_one_sentence_answers_as_before(stub):
    reply = await stub.Translate(
        pb.TranslateRequest(
            text="Lua bindings for Pure Data",
            target_language="fr",
            options=pb.DecodingOptions(return_attention=True),
        )
    )
    assert reply.source_tokens and reply.hypotheses[0].attention.rows > 0
    assert reply.sentence_count == 1


async def test_grpc_detect_and_auto(stub):
    reply = await stub.Detect(pb.DetectRequest(text="Questo è un programma per comprimere file"))
    assert reply.languages[0].language == "it"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Translate(
            pb.TranslateRequest(
                text="Questo è un programma per comprimere file",
                source_language="auto",
                target_language="fr",
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'it'" in caught.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(pb.DetectRequest(text="  "))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


LONG_CONTEXT = (
    "xfonts-terminus is a Debian package in the fonts section. "
    + "xfonts-terminus contains bitmap fonts for the console and for X11 in many sizes. " * 40
    + "It is maintained by Anton Zinoviev. "
    + "The homepage of xfonts-terminus is https://terminus-font.sourceforge.net/. " * 6
)


async def test_long_answer_context_uses_the_best_window(server, stub):
    status, body = await _post(
        server,
        "/v1/answer",
        {"question": "Who maintains xfonts-terminus?", "context": LONG_CONTEXT},
    )
    assert status == 200, body
    used = body["input_used"]
    assert used["method"] == "window" and used["total"] == len(LONG_CONTEXT)
    assert "maintained by Anton" in LONG_CONTEXT[used["start"] : used["end"]]
    reply = await stub.Answer(
        pb.AnswerRequest(question="Who maintains xfonts-terminus?", context=LONG_CONTEXT)
    )
    assert (reply.input_used.start, reply.input_used.end) == (used["start"], used["end"])


async def test_long_summary_text_is_truncated_at_a_sentence(server, stub):
    text = "NaCl is a new easy-to-use high-speed software library. " * 40
    status, body = await _post(server, "/v1/summarize", {"text": text})
    assert status == 200, body
    used = body["input_used"]
    assert used["method"] == "truncated" and used["start"] == 0
    assert text[: used["end"]].endswith("library.") and used["end"] < len(text)
    reply = await stub.Summarize(pb.SummarizeRequest(text=text))
    assert reply.input_used.method == "truncated" and reply.input_used.end == used["end"]
    short = await stub.Summarize(pb.SummarizeRequest(text="A short text to summarize."))
    assert not short.HasField("input_used")


async def test_grpc_stream_with_auto_source(stub):
    events = [
        event
        async for event in stub.TranslateStream(
            pb.TranslateRequest(
                text="A tool to compress files", source_language="auto", target_language="de"
            )
        )
    ]
    assert events[-1].result.model.name == "translate-en-de"
