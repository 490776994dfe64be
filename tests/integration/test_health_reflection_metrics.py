"""Health, reflection and the Prometheus endpoint, checked from outside like an operator."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    "service_name", ["", "seq2seq.v1.Seq2Seq", "seq2seq.v1.Seq2Seq/translate-en-fr"]
)
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


def _value(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


RPC = {"grpc_type": "unary", "grpc_service": "seq2seq.v1.Seq2Seq"}


async def test_metrics_count_requests_and_name_the_provider(server, stub) -> None:
    labels = {**RPC, "grpc_method": "ListModels"}
    before = _value(_scrape(server.metrics_port), "grpc_server_started_total", **labels)
    await stub.ListModels(pb.ListModelsRequest(), timeout=5)
    await stub.ListModels(pb.ListModelsRequest(), timeout=5)
    after = _scrape(server.metrics_port)
    assert _value(after, "grpc_server_started_total", **labels) == before + 2
    assert _value(after, "grpc_server_handled_total", **labels, grpc_code="OK") >= 2
    assert _value(after, "grpc_server_handling_seconds_count", **labels) >= 2
    info = _value(
        after,
        "seq2seq_model_info",
        model="translate-en-fr",
        provider="CPUExecutionProvider",
        precision="fp32",
        task="translate",
    )
    assert info == 1
    assert _value(after, "process_resident_memory_bytes") > 0


async def test_metrics_record_error_codes_and_engine_work(server, stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Summarize(pb.SummarizeRequest(text=""), timeout=5)
    await stub.Summarize(pb.SummarizeRequest(text="A tool to compress files."), timeout=30)
    text = _scrape(server.metrics_port)
    labels = {**RPC, "grpc_method": "Summarize"}
    assert _value(text, "grpc_server_handled_total", **labels, grpc_code="INVALID_ARGUMENT") >= 1
    assert _value(text, "grpc_server_handled_total", **labels, grpc_code="OK") >= 1
    assert _value(text, "seq2seq_requests_rejected_total", reason="invalid_argument") >= 1
    summarize = {"model": "summarize-en"}
    assert _value(text, "seq2seq_batch_size_count", **summarize, stage="encoder") >= 1
    assert _value(text, "seq2seq_batch_size_count", **summarize, stage="decoder") >= 1
    assert _value(text, "seq2seq_input_tokens_total", **summarize) >= 1
    assert (
        _value(text, "seq2seq_requests_finished_total", **summarize, status="finished_eos")
        + _value(text, "seq2seq_requests_finished_total", **summarize, status="finished_length")
        >= 1
    )
