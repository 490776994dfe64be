"""Hot reload on a private repository copy: versions come and go while requests run."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service import bundle as contract
from service.server.server import Seq2SeqServer
from tests.conftest import heldout
from tests.integration.conftest import (
    add_version,
    copy_repository,
    make_settings,
    metric,
    rewrite_manifest,
    wait_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUMMARY_SOURCE = heldout("summarize")[0]["source"]
WAIT = 30.0  # seconds any bounded wait may take on a busy 2-core machine


@pytest_asyncio.fixture(loop_scope="session")
async def running(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple]:
    """(server, stub, repo) over a private copy; tests pass settings through `param`."""
    overrides = getattr(request, "param", {})
    repo = copy_repository(tmp_path, "summarize-en", "translate-en-fr")
    for name, version in overrides.pop("extra_versions", ()):
        add_version(repo, name, version)
    server = Seq2SeqServer(
        make_settings(model_repository=repo, repository_poll_interval=0.2, **overrides)
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield server, pb_grpc.Seq2SeqStub(channel), repo, channel
    finally:
        await server.drain_and_stop(grace=5.0)


async def _versions(stub: pb_grpc.Seq2SeqStub, name: str) -> dict[int, pb.ModelInfo]:
    response = await stub.ListModels(pb.ListModelsRequest(), timeout=10)
    return {m.version: m for m in response.models if m.name == name}


async def _summarize(stub: pb_grpc.Seq2SeqStub, version: int = 0) -> pb.GenerateResponse:
    options = pb.DecodingOptions(model_version=version)
    return await stub.Summarize(
        pb.SummarizeRequest(text=SUMMARY_SOURCE, options=options), timeout=60
    )


async def _health(channel: grpc.aio.Channel) -> int:
    health = health_pb2_grpc.HealthStub(channel)
    return (await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)).status


@pytest.mark.parametrize("running", [{"max_batch_size": 1}], indirect=True)
async def test_versions_come_and_go_without_dropping_requests(running) -> None:
    server, stub, repo, channel = running
    port = server.metrics_port

    # A second version appears: requests that name none get it, version 1 still answers.
    assert await metric(port, "seq2seq_reload_total", result="added") == 2  # the start-up
    add_version(repo, "summarize-en", 2)

    async def v2_is_default() -> bool:
        versions = await _versions(stub, "summarize-en")
        return 2 in versions and versions[2].is_default_version

    await wait_for(v2_is_default, WAIT, "summarize-en v2 to be served")
    versions = await _versions(stub, "summarize-en")
    assert not versions[1].is_default_version
    assert all(v.evaluation for v in versions.values())
    assert (await _summarize(stub)).model.version == 2
    assert (await _summarize(stub, version=1)).model.version == 1
    assert await metric(port, "seq2seq_reload_total", result="added") == 3
    for version in ("1", "2"):
        assert await metric(port, "seq2seq_model_info", model="summarize-en", version=version)

    # A version that does not exist is refused with a clear message; nothing else changes.
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await _summarize(stub, version=7)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no version 7" in (missing.value.details() or "")

    # A corrupt bundle and a half-copied one are refused; everything else keeps serving.
    corrupt = add_version(repo, "translate-en-fr", 2)
    decoder = corrupt / contract.DECODER_FILE
    decoder.write_bytes(decoder.read_bytes()[:-100])
    partial = repo / "summarize-en" / "3"
    partial.mkdir()
    shutil.copy(repo / "summarize-en" / "1" / contract.TOKENIZER_FILE, partial)

    async def both_refused() -> bool:
        return {str(corrupt), str(partial)} <= set(server.repository.refused)

    await wait_for(both_refused, WAIT, "the bad bundles to be refused")
    refused = server.repository.refused
    assert "decoder.onnx" in refused[str(corrupt)] and "sha256" in refused[str(corrupt)]
    assert "missing manifest" in refused[str(partial)]
    assert await metric(port, "seq2seq_bundles_refused") == 2
    assert (await metric(port, "seq2seq_reload_total", result="refused") or 0) >= 2
    assert set(await _versions(stub, "translate-en-fr")) == {1}
    translated = await stub.Translate(
        pb.TranslateRequest(text="Free software.", target_language="fr"), timeout=30
    )
    assert translated.model.version == 1
    assert sorted(await _versions(stub, "summarize-en")) == [1, 2]

    # Version 1 is deleted while a stream on it is mid-flight and a backlog is queued.
    options = pb.DecodingOptions(model_version=1)
    stream = stub.SummarizeStream(pb.SummarizeRequest(text=SUMMARY_SOURCE, options=options))
    first = await stream.read()
    assert first.HasField("token")
    backlog = [asyncio.ensure_future(_summarize(stub, version=1)) for _ in range(200)]

    async def backlog_queued() -> bool:
        depth = await metric(port, "seq2seq_queue_depth", model="summarize-en", version="1")
        return (depth or 0) >= 40

    await wait_for(backlog_queued, WAIT, "a backlog on summarize-en v1")
    shutil.rmtree(repo / "summarize-en" / "1")
    await server.repository.sync()  # the poller may have got there first; either is fine
    # v1 left the table, but its closed scheduler still holds queued requests.
    left_queued = await metric(port, "seq2seq_queue_depth", model="summarize-en", version="1")
    assert set(await _versions(stub, "summarize-en")) == {2}
    assert (left_queued or 0) > 0, "the backlog drained before v1 was removed; nothing proven"
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await _summarize(stub, version=1)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND

    rest = []
    while (event := await stream.read()) is not grpc.aio.EOF:
        rest.append(event)
    assert await stream.code() == grpc.StatusCode.OK
    assert rest[-1].HasField("result") and rest[-1].result.model.version == 1
    # Requests that reached v1 before it left all finish on v1; only calls still on the
    # wire when it left may get NOT_FOUND, and none may be dropped (UNAVAILABLE).
    outcomes = await asyncio.gather(*backlog, return_exceptions=True)
    served = [o for o in outcomes if isinstance(o, pb.GenerateResponse)]
    failed = [o for o in outcomes if not isinstance(o, pb.GenerateResponse)]
    assert {r.model.version for r in served} == {1}
    assert all(
        isinstance(f, grpc.aio.AioRpcError) and f.code() == grpc.StatusCode.NOT_FOUND
        for f in failed
    ), failed[:3]
    assert len(served) >= left_queued  # at least everything v1 still held when it left

    async def v1_series_gone() -> bool:
        depth = await metric(port, "seq2seq_queue_depth", model="summarize-en", version="1")
        info = await metric(port, "seq2seq_model_info", model="summarize-en", version="1")
        return depth is None and info is None

    await wait_for(v1_series_gone, WAIT, "v1's series to disappear once its engine stopped")
    assert await metric(port, "seq2seq_reload_total", result="removed") == 1
    assert (await _summarize(stub)).model.version == 2
    assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    "running",
    [{"default_versions": {"summarize-en": 1}, "extra_versions": [("summarize-en", 2)]}],
    indirect=True,
)
async def test_pinned_default_changed_bundle_and_empty_repository(running) -> None:
    server, stub, repo, channel = running
    port = server.metrics_port
    versions = await _versions(stub, "summarize-en")
    assert versions[1].is_default_version and not versions[2].is_default_version
    assert (await _summarize(stub)).model.version == 1  # pinned, though v2 is newer
    assert (await _summarize(stub, version=2)).model.version == 2

    # A changed manifest (its checksum differs) replaces the served version in place.
    bundle_dir = repo / "summarize-en" / "1"
    evaluation = contract.read_manifest(bundle_dir).evaluation
    assert evaluation is not None
    figures = {**evaluation.metrics, "reload_marker": 42.0}
    rewrite_manifest(bundle_dir, evaluation={**evaluation.model_dump(), "metrics": figures})

    async def replaced() -> bool:
        return await metric(port, "seq2seq_reload_total", result="replaced") == 1

    await wait_for(replaced, WAIT, "summarize-en v1 to be replaced")
    assert (await _versions(stub, "summarize-en"))[1].evaluation["reload_marker"] == 42.0
    assert (await _summarize(stub)).model.version == 1

    # Health stays SERVING while one model serves, and says NOT_SERVING when none does.
    shutil.rmtree(repo / "summarize-en")

    async def summarize_gone() -> bool:
        return not await _versions(stub, "summarize-en")

    await wait_for(summarize_gone, WAIT, "summarize-en to be unloaded")
    assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    shutil.rmtree(repo / "translate-en-fr")

    async def not_serving() -> bool:
        return await _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING

    await wait_for(not_serving, WAIT, "health to say NOT_SERVING")
    assert await metric(port, "seq2seq_models_loaded") == 0
    with pytest.raises(grpc.aio.AioRpcError) as none_left:
        await _summarize(stub)
    assert none_left.value.code() == grpc.StatusCode.NOT_FOUND


async def test_no_unversioned_request_fails_while_bundles_change_under_load(running) -> None:
    """The issue's verification: add, replace, corrupt and remove bundles under steady load."""
    server, stub, repo, _channel = running
    port = server.metrics_port
    stop = asyncio.Event()
    served: list[int] = []
    failures: list[BaseException] = []

    async def client() -> None:
        while not stop.is_set():
            try:
                served.append((await _summarize(stub)).model.version)
            except grpc.aio.AioRpcError as error:
                failures.append(error)

    clients = [asyncio.ensure_future(client()) for _ in range(8)]
    try:
        add_version(repo, "summarize-en", 2)
        await wait_for(lambda: _has_default(stub, 2), WAIT, "v2 to become the default")
        rewrite_manifest(repo / "summarize-en" / "2", training={"reload": "replaced"})
        await wait_for(
            lambda: _metric_at_least(port, "seq2seq_reload_total", 1, result="replaced"),
            WAIT,
            "v2 to be replaced",
        )
        corrupt = add_version(repo, "summarize-en", 3)
        (corrupt / contract.ENCODER_FILE).write_bytes(b"corrupt")
        await wait_for(
            lambda: _metric_at_least(port, "seq2seq_bundles_refused", 1), WAIT, "v3 refused"
        )
        shutil.rmtree(repo / "summarize-en" / "1")
        await wait_for(
            lambda: _metric_at_least(port, "seq2seq_reload_total", 1, result="removed"),
            WAIT,
            "v1 to be removed",
        )
        await asyncio.sleep(0.5)  # keep the load on a little after the last change
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert failures == []
    assert len(served) > 20 and set(served) <= {1, 2} and served[-1] == 2


async def _has_default(stub: pb_grpc.Seq2SeqStub, version: int) -> bool:
    versions = await _versions(stub, "summarize-en")
    return version in versions and versions[version].is_default_version


async def _metric_at_least(port: int, name: str, value: float, **labels: str) -> bool:
    return (await metric(port, name, **labels) or 0) >= value


async def test_an_empty_start_is_allowed_for_hot_reload(tmp_path: Path) -> None:
    """allow_empty_repository: NOT_SERVING with nothing to serve, SERVING once a bundle
    lands in the (at first missing) folder."""
    repo = tmp_path / "later"
    server = Seq2SeqServer(
        make_settings(
            model_repository=repo, allow_empty_repository=True, repository_poll_interval=0.2
        )
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
            copy_repository(tmp_path / "staging", "summarize-en").rename(repo)

            async def serving() -> bool:
                return await _health(channel) == health_pb2.HealthCheckResponse.SERVING

            await wait_for(serving, WAIT, "the hot-reloaded bundle to serve")
            stub = pb_grpc.Seq2SeqStub(channel)
            assert (await _summarize(stub)).model.name == "summarize-en"
    finally:
        await server.drain_and_stop(grace=5.0)
