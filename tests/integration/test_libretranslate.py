"""LibreTranslate's API, called by LibreTranslate's own client (`libretranslatepy`)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid

import pytest
import pytest_asyncio
from libretranslatepy import LibreTranslateAPI

from service.server.server import Seq2SeqServer
from tests.integration.conftest import http, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _client(server: Seq2SeqServer, key: str | None = None) -> LibreTranslateAPI:
    return LibreTranslateAPI(f"http://127.0.0.1:{server.http_port}", api_key=key)


async def test_the_client_translates_detects_and_lists(server):
    client = _client(server)
    text = await asyncio.to_thread(client.translate, "A tool to compress files", "en", "fr")
    assert isinstance(text, str) and text and text != "A tool to compress files"
    detected = await asyncio.to_thread(client.detect, "Un outil pour compresser des fichiers")
    assert detected[0]["language"] == "fr" and 0 <= detected[0]["confidence"] <= 100
    languages = await asyncio.to_thread(client.languages)
    english = next(lang for lang in languages if lang["code"] == "en")
    assert english["name"] == "English" and set(english["targets"]) == {"de", "fr", "it"}


async def test_json_body_with_a_list_auto_source_and_alternatives(server):
    status, body = await asyncio.to_thread(
        http,
        server.http_port,
        "/translate",
        {
            "q": ["Lua bindings for Pure Data", "A tool to compress files"],
            "source": "auto",
            "target": "it",
            "alternatives": 2,
        },
    )
    assert status == 200, body
    assert len(body["translatedText"]) == 2
    assert [d["language"] for d in body["detectedLanguage"]] == ["en", "en"]
    assert all(len(a) == 2 for a in body["alternatives"])


async def test_errors_are_libretranslate_shaped(server):
    status, body = await asyncio.to_thread(
        http, server.http_port, "/translate", {"q": "hello", "source": "en"}
    )
    assert status == 400 and "target" in body["error"]
    client = _client(server)
    with pytest.raises(urllib.error.HTTPError) as caught:
        await asyncio.to_thread(client.translate, "hello", "en", "zz")
    assert caught.value.code == 404


def _multipart(fields: dict[str, str], name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def _upload(server, name: str, data: bytes) -> tuple[int, dict]:
    body, content_type = _multipart({"source": "en", "target": "de"}, name, data)
    return await asyncio.to_thread(
        http, server.http_port, "/translate_file", body, content_type=content_type
    )


@pytest.mark.parametrize(
    ("name", "data", "kept"),
    [
        ("notes.txt", b"A tool to compress files.\n\n * Lua bindings\n", ["\n\n * ", "\n"]),
        (
            "page.html",
            b"<p>A tool to compress files.</p>\n<pre>x</pre>",
            ["<p>", "</p>\n<pre>x</pre>"],
        ),
    ],
)
async def test_translate_file_round_trip(server, name, data, kept):
    status, body = await _upload(server, name, data)
    assert status == 200, body
    url = body["translatedFileUrl"]
    assert url.startswith(f"http://127.0.0.1:{server.http_port}/download_file/")

    def download() -> tuple[str, str]:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode(), response.headers["content-disposition"]

    translated, disposition = await asyncio.to_thread(download)
    assert name in disposition
    assert all(piece in translated for piece in kept)
    assert translated != data.decode()


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("report.pdf", b"%PDF-1.4", 415),
        ("big.txt", b"a" * (1_048_576 + 1), 413),
        ("latin1.txt", "café".encode("latin-1"), 400),
    ],
)
async def test_translate_file_refusals(server, name, data, status):
    got, body = await _upload(server, name, data)
    assert got == status, body
    assert body["error"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def guarded_server():
    instance = Seq2SeqServer(make_settings(auth_tokens=["s3cret"]))
    await instance.start()
    yield instance
    await instance.drain_and_stop(grace=1.0)


async def test_api_keys_are_the_servers_bearer_tokens(guarded_server):
    with pytest.raises(urllib.error.HTTPError) as caught:
        await asyncio.to_thread(_client(guarded_server).translate, "a tool", "en", "fr")
    assert caught.value.code == 403
    assert json.loads(caught.value.read())["error"] == "Invalid API key"
    text = await asyncio.to_thread(
        _client(guarded_server, "s3cret").translate, "a tool", "en", "fr"
    )
    assert text
    status, _ = await asyncio.to_thread(
        http, guarded_server.http_port, "/v1/detect", {"text": "hello there friends"}
    )
    assert status == 401
    status, _ = await asyncio.to_thread(
        http,
        guarded_server.http_port,
        "/v1/detect",
        {"text": "hello there friends"},
        headers={"authorization": "Bearer s3cret"},
    )
    assert status == 200
    assert (await asyncio.to_thread(http, guarded_server.http_port, "/healthz"))[0] == 200


async def test_drain_answers_503_and_health_flips():
    instance = Seq2SeqServer(make_settings())
    await instance.start()
    port = instance.http_port
    slow = asyncio.create_task(
        asyncio.to_thread(
            http,
            port,
            "/v1/translate",
            {"text": "A tool to compress files. " * 40, "target_language": "fr"},
        )
    )
    await asyncio.sleep(0.05)
    drain = asyncio.create_task(instance.drain_and_stop(grace=5.0))
    await asyncio.sleep(0.02)
    assert instance.front_door.draining
    status, body = await asyncio.to_thread(http, port, "/v1/detect", {"text": "hello there"})
    assert status == 503 and "draining" in body["error"]
    assert (await asyncio.to_thread(http, port, "/healthz"))[0] == 503
    assert (await slow)[0] == 200  # the in-flight document finished
    await drain
