"""A real server on a loopback port over the committed default bundles, and a real client."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service import bundle as contract
from service.server.server import Seq2SeqServer
from service.settings import Settings
from tests.conftest import TEST_MODELS, default_bundle


def make_settings(**overrides: object) -> Settings:
    """Loopback, ports picked by the OS, and a pinned topology (one engine process, one front
    end, one onnxruntime thread), so that a run is the same on 2 cores and on 16."""
    fields: dict[str, object] = {
        "model_repository": TEST_MODELS,
        "host": "127.0.0.1",
        "port": 0,
        "metrics_host": "127.0.0.1",
        "metrics_port": 0,
        "http_host": "127.0.0.1",
        "http_port": 0,
        "providers": ("cpu",),
        "intra_op_threads": 1,
        "engine_mode": "process",
        "frontend_processes": 1,  # the default is one per 4 usable cores
        "drain_grace_period": 5.0,
    }
    fields.update(overrides)
    return Settings(**fields)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server() -> AsyncIterator[Seq2SeqServer]:
    instance = Seq2SeqServer(make_settings())
    await instance.start()
    yield instance
    await instance.drain_and_stop(grace=2.0)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def channel(server: Seq2SeqServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        yield chan


@pytest.fixture(scope="session")
def stub(channel: grpc.aio.Channel) -> pb_grpc.Seq2SeqStub:
    return pb_grpc.Seq2SeqStub(channel)


def copy_repository(tmp_path: Path, *names: str) -> Path:
    """A private copy of some TEST_MODELS bundles (their committed versions), safe to modify."""
    repo = tmp_path / "models"
    for name in names:
        bundle = default_bundle(name)
        shutil.copytree(bundle, repo / name / bundle.name)
    return repo


def add_version(repo: Path, name: str, version: int, source_version: int = 1) -> Path:
    """Copy `<name>/<source_version>/` to `<name>/<version>/` and re-stamp its manifest."""
    target = repo / name / str(version)
    shutil.copytree(repo / name / str(source_version), target)
    rewrite_manifest(target, version=version)
    return target


def rewrite_manifest(bundle_dir: Path, **changes: Any) -> None:
    """Edit manifest fields and write it back with fresh checksums, as the exporter does."""
    fields = json.loads((bundle_dir / contract.MANIFEST_FILE).read_text())
    fields.pop("files")
    fields.update(changes)
    contract.write_manifest(bundle_dir, fields)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def samples(text: str, name: str, **labels: str) -> list[float]:
    """Values of every sample `name` whose labels include `labels`."""
    return [
        float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]


async def metric(port: int, name: str, **labels: str) -> float | None:
    """The summed value of matching samples from a live scrape, None when there are none."""
    found = samples(await asyncio.to_thread(scrape, port), name, **labels)
    return sum(found) if found else None


async def assert_load_shed(results: list[object], metrics_port: int) -> None:
    """Calls of an overloaded model: each OK or RESOURCE_EXHAUSTED (naming the queue), some
    of each, and every refusal counted as `overloaded`."""
    codes = [
        r.code() if isinstance(r, grpc.aio.AioRpcError) else grpc.StatusCode.OK for r in results
    ]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
    assert codes.count(grpc.StatusCode.OK) >= 1
    shed = next(r for r in results if isinstance(r, grpc.aio.AioRpcError))
    assert "queue is full" in shed.details()
    overloaded = await metric(metrics_port, "seq2seq_requests_rejected_total", reason="overloaded")
    assert overloaded == codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)


def http(
    port: int,
    path: str,
    body: bytes | dict | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, Any]:
    """A blocking HTTP call to the server's HTTP port: (status, decoded JSON or text)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        headers={"content-type": content_type, **(headers or {})} if data is not None else {},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers
    if kind.get("content-type", "").startswith("application/json"):
        return status, json.loads(raw)
    return status, raw.decode()
