"""Documents and the HTTP front end against gRPC, side by side on one running server.

    python -m benchmarks.documents --out docs/results/documents_http.json

(a) A document of 200 held-out English sentences translated en->fr in ONE Translate call,
    against the same 200 sentences as 200 concurrent unary gRPC calls (and as one call with
    `texts`, and as one HTTP call). Rounds interleave, medians are compared.
(b) HTTP/JSON against gRPC requests/s for single-sentence Translate calls at the same
    closed-loop concurrency (N clients, each one request after the other, keep-alive).

The server runs as `seq2seq-serve` in its own process (its own event loop and cores); the
clients run here: grpc.aio for gRPC, a minimal keep-alive HTTP/1.1 client on asyncio streams
for HTTP (so neither side pays for a heavy client library).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc

from benchmarks.report import environment, print_table, write_json
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.text.segment import segmenter_for
from tests.conftest import heldout

SENTENCES = 200
PER_PARAGRAPH = 4


def heldout_sentences(count: int) -> list[str]:
    """`count` distinct held-out English sentences (test split), ending in a full stop:
    the translate fixtures' sources, and the sentences of the summarize and answer ones."""
    texts = [
        r["source"]
        for d in ("translate-en-fr", "translate-en-de", "translate-en-it")
        for r in heldout(d)
    ]
    texts += [r["source"] for r in heldout("summarize")]
    texts += [r["context"] for r in heldout("answer")]
    segmenter = segmenter_for("en")
    seen: list[str] = []
    for text in texts:
        for span in segmenter.sentences(text):
            sentence = text[span.start : span.end].rstrip(".!?") + "."
            words = len(sentence.split())
            if 2 <= words <= 40 and sentence not in seen:
                seen.append(sentence)
    if len(seen) < count:
        raise SystemExit(f"only {len(seen)} held-out sentences; asked for {count}")
    return seen[:count]


def as_document(sentences: list[str]) -> str:
    paragraphs = [
        " ".join(sentences[i : i + PER_PARAGRAPH]) for i in range(0, len(sentences), PER_PARAGRAPH)
    ]
    return "\n\n".join(paragraphs) + "\n"


# --- the server ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(threads: int) -> tuple[subprocess.Popen[bytes], int, int]:
    grpc_port, http_port, metrics_port = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "SEQ2SEQ_PROVIDERS": '["cpu"]',
        "SEQ2SEQ_INTRA_OP_THREADS": str(threads),
        "SEQ2SEQ_HTTP_HOST": "127.0.0.1",
        "SEQ2SEQ_MAX_TEXTS": str(SENTENCES),
        "SEQ2SEQ_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.server.main",
            "--host",
            "127.0.0.1",
            "--port",
            str(grpc_port),
            "--metrics-port",
            str(metrics_port),
        ],
        env={**env, "SEQ2SEQ_HTTP_PORT": str(http_port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1):
                return process, grpc_port, http_port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start within 60 s")


# --- a minimal HTTP/1.1 keep-alive client --------------------------------------------------
class HttpConnection:
    def __init__(self, port: int) -> None:
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One request; a connection the server closed while idle (uvicorn's keep-alive
        timeout is 5 s) is reopened once."""
        reused = self._writer is not None
        try:
            return await self._post(path, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            await self.close()
            self._writer = None
            return await self._post(path, body)

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        assert self._reader is not None
        payload = json.dumps(body).encode()
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        return status, json.loads(await self._reader.readexactly(length))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


# --- (a) one document vs many calls ---------------------------------------------------------
async def document_rounds(grpc_port: int, http_port: int, rounds: int) -> dict[str, Any]:
    sentences = heldout_sentences(SENTENCES)
    document = as_document(sentences)
    seconds: dict[str, list[float]] = {
        "document, one gRPC call": [],
        f"{SENTENCES} concurrent gRPC calls": [],
        "texts, one gRPC call": [],
        "document, one HTTP call": [],
    }
    pieces = 0
    http = HttpConnection(http_port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = pb_grpc.Seq2SeqStub(channel)
        await stub.Translate(pb.TranslateRequest(text=document, target_language="fr"))  # warm
        for _ in range(rounds):
            started = time.perf_counter()
            reply = await stub.Translate(pb.TranslateRequest(text=document, target_language="fr"))
            seconds["document, one gRPC call"].append(time.perf_counter() - started)
            pieces = reply.sentence_count

            started = time.perf_counter()
            await asyncio.gather(
                *(
                    stub.Translate(pb.TranslateRequest(text=s, target_language="fr"))
                    for s in sentences
                )
            )
            seconds[f"{SENTENCES} concurrent gRPC calls"].append(time.perf_counter() - started)

            started = time.perf_counter()
            await stub.Translate(pb.TranslateRequest(texts=sentences, target_language="fr"))
            seconds["texts, one gRPC call"].append(time.perf_counter() - started)

            started = time.perf_counter()
            status, _ = await http.post(
                "/v1/translate", {"text": document, "target_language": "fr"}
            )
            assert status == 200
            seconds["document, one HTTP call"].append(time.perf_counter() - started)
    await http.close()
    base = statistics.median(seconds[f"{SENTENCES} concurrent gRPC calls"])
    rows = {
        name: {
            "median_seconds": round(statistics.median(runs), 4),
            "sentences_per_second": round(SENTENCES / statistics.median(runs), 1),
            "vs_concurrent_calls": round(base / statistics.median(runs), 3),
            "runs": [round(r, 4) for r in runs],
        }
        for name, runs in seconds.items()
    }
    return {
        "sentences": SENTENCES,
        "pieces_the_server_counted": pieces,
        "document_chars": len(document),
        "rounds": rounds,
        "modes": rows,
    }


# --- (b) HTTP vs gRPC at the same concurrency -------------------------------------------------
async def closed_loop_grpc(port: int, sentences: list[str], clients: int, seconds: float) -> int:
    done = 0
    stop = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.Seq2SeqStub(channel)

        async def client(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() < stop:
                await stub.Translate(
                    pb.TranslateRequest(text=sentences[i % len(sentences)], target_language="fr")
                )
                done += 1
                i += clients

        await asyncio.gather(*(client(k) for k in range(clients)))
    return done


async def closed_loop_http(port: int, sentences: list[str], clients: int, seconds: float) -> int:
    done = 0
    stop = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal done
        connection = HttpConnection(port)
        i = k
        while time.monotonic() < stop:
            status, _ = await connection.post(
                "/v1/translate",
                {"text": sentences[i % len(sentences)], "target_language": "fr"},
            )
            assert status == 200
            done += 1
            i += clients
        await connection.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return done


async def protocol_rounds(
    grpc_port: int, http_port: int, clients: int, seconds: float, rounds: int
) -> dict[str, Any]:
    sentences = heldout_sentences(SENTENCES)
    await closed_loop_grpc(grpc_port, sentences, clients, 1.0)  # warm both paths
    await closed_loop_http(http_port, sentences, clients, 1.0)
    rates: dict[str, list[float]] = {"grpc": [], "http": []}
    for _ in range(rounds):
        rates["grpc"].append(
            await closed_loop_grpc(grpc_port, sentences, clients, seconds) / seconds
        )
        rates["http"].append(
            await closed_loop_http(http_port, sentences, clients, seconds) / seconds
        )
    grpc_rate, http_rate = statistics.median(rates["grpc"]), statistics.median(rates["http"])
    return {
        "clients": clients,
        "seconds_per_run": seconds,
        "rounds": rounds,
        "grpc_requests_per_second": round(grpc_rate, 1),
        "http_requests_per_second": round(http_rate, 1),
        "http_vs_grpc": round(http_rate / grpc_rate, 3),
        "runs": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results/documents_http.json"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)
    process, grpc_port, http_port = start_server(args.threads)
    try:
        documents = asyncio.run(document_rounds(grpc_port, http_port, args.rounds))
        protocols = asyncio.run(
            protocol_rounds(grpc_port, http_port, args.clients, args.seconds, args.rounds)
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    report = {"documents": documents, "protocols": protocols, "environment": environment()}
    write_json(args.out, report)
    print_table(
        ["mode", "median s", "sentences/s", "x 200 concurrent calls"],
        [
            [name, m["median_seconds"], m["sentences_per_second"], m["vs_concurrent_calls"]]
            for name, m in documents["modes"].items()
        ],
    )
    print_table(
        ["clients", "gRPC req/s", "HTTP req/s", "HTTP / gRPC"],
        [
            [
                protocols["clients"],
                protocols["grpc_requests_per_second"],
                protocols["http_requests_per_second"],
                protocols["http_vs_grpc"],
            ]
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
