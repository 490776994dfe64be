"""Health, reflection and the Prometheus endpoint, checked from outside like an operator."""

from __future__ import annotations

import urllib.request

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.api.gen.seq2seq.v1 import seq2seq_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize("service_name", ["", "seq2seq.v1.Seq2Seq"])
async def test_health_is_serving(channel, service_name: str) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service_name), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_the_service(channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="seq2seq.v1.Seq2Seq"),
    ]
    responses = [r async for r in stub.ServerReflectionInfo(iter(requests), timeout=5)]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"seq2seq.v1.Seq2Seq", "grpc.health.v1.Health"} <= names
    assert responses[1].file_descriptor_response.file_descriptor_proto


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _value(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample starting with {prefix!r}")


async def test_metrics_count_requests_and_name_the_provider(server, stub) -> None:
    label = 'grpc_type="unary",grpc_service="seq2seq.v1.Seq2Seq",grpc_method="ListModels"'
    before = _scrape(server.metrics_port)
    started_before = (
        _value(before, f"grpc_server_started_total{{{label}}}")
        if (f"grpc_server_started_total{{{label}}}" in before)
        else 0.0
    )
    await stub.ListModels(pb.ListModelsRequest(), timeout=5)
    await stub.ListModels(pb.ListModelsRequest(), timeout=5)
    after = _scrape(server.metrics_port)
    assert _value(after, f"grpc_server_started_total{{{label}}}") == started_before + 2
    assert _value(after, f'grpc_server_handled_total{{{label},grpc_code="OK"}}') >= 2
    assert _value(after, f"grpc_server_handling_seconds_count{{{label}}}") >= 2
    assert 'seq2seq_model_info{model="translate-en-fr"' in after
    assert 'provider="CPUExecutionProvider"' in after
    assert "process_resident_memory_bytes" in after


async def test_metrics_record_error_codes_and_engine_work(server, stub) -> None:
    import grpc

    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Summarize(pb.SummarizeRequest(text=""), timeout=5)
    await stub.Summarize(pb.SummarizeRequest(text="A tool to compress files."), timeout=30)
    text = _scrape(server.metrics_port)
    label = 'grpc_type="unary",grpc_service="seq2seq.v1.Seq2Seq",grpc_method="Summarize"'
    assert _value(text, f'grpc_server_handled_total{{{label},grpc_code="INVALID_ARGUMENT"}}') >= 1
    assert _value(text, 'seq2seq_requests_rejected_total{reason="invalid_argument"}') >= 1
    assert _value(text, 'seq2seq_batch_size_count{model="summarize-en",stage="encoder"}') >= 1
    assert _value(text, 'seq2seq_input_tokens_total{model="summarize-en"}') >= 1
