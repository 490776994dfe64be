"""The load tester's figures checked against two independent witnesses: the server's own
Prometheus metrics (exact call counts by method and status code) and a plain gRPC client
timing the same requests one by one (latency, loosely)."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from seq2seq_client.loadtest.mix import default_mix_path
from tests.client.conftest import ServerThread
from tests.integration.conftest import samples, scrape
from tests.loadtest.conftest import handled, run_load, translate, write_mix

RPCS = ("Translate", "Summarize", "Answer")


def _real_lines(n: int) -> list[dict[str, Any]]:
    """The first n lines of the bundled mix (held-out inputs, all three RPCs)."""
    lines = default_mix_path().read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line) for line in lines]


def _delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def test_call_counts_match_the_servers_metrics_exactly(
    load_server: ServerThread, tmp_path: Path
) -> None:
    bad = translate(options={"beam_size": 99})  # above max_beam_size: INVALID_ARGUMENT
    mix = write_mix(tmp_path, [*_real_lines(6), bad])
    report_path = tmp_path / "run.json"
    before = handled(load_server)
    ran = run_load(
        "--target", load_server.address, "--mix", str(mix), "-c", "3", "-n", "40",
        "--warmup-requests", "7", "--json", str(report_path), "--quiet",
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    server = _delta(before, handled(load_server))

    report = json.loads(report_path.read_text())
    client: Counter[tuple[str, str]] = Counter()
    for phase in ("warmup", "measured"):
        for rpc, codes in report["calls"][phase].items():
            for code, n in codes.items():
                client[(rpc, code)] += n
    assert sum(client.values()) == 47  # 7 warm-up + 40 measured
    assert client[("Translate", "INVALID_ARGUMENT")] > 0  # the error path is exercised
    assert server == {**client, ("ListModels", "OK"): 1}  # + the pre-flight, nothing else
    assert report["errors_by_code"] == {
        "INVALID_ARGUMENT": report["calls"]["measured"]["Translate"]["INVALID_ARGUMENT"]
    }


def _plain_request(line: dict[str, Any]) -> tuple[str, Any]:
    """The same request built by hand from the mix line, not through the client SDK."""
    options = pb.DecodingOptions(**line.get("options", {}))
    if line["rpc"] == "Translate":
        return "Translate", pb.TranslateRequest(
            text=line["text"], target_language=line["target_language"], options=options
        )
    if line["rpc"] == "Summarize":
        return "Summarize", pb.SummarizeRequest(text=line["text"], options=options)
    return "Answer", pb.AnswerRequest(
        question=line["question"], context=line["context"], options=options
    )


def _handling(metrics_port: int) -> tuple[float, float]:
    """(sum of seconds, count) of grpc_server_handling_seconds over the three RPCs."""
    text = scrape(metrics_port)
    total = count = 0.0
    for rpc in RPCS:
        total += sum(samples(text, "grpc_server_handling_seconds_sum", grpc_method=rpc))
        count += sum(samples(text, "grpc_server_handling_seconds_count", grpc_method=rpc))
    return total, count


def _plain_calls(address: str, lines: list[dict[str, Any]], n: int) -> list[float]:
    """An independent client: raw stubs, one call at a time; seconds per call."""
    seconds = []
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.Seq2SeqStub(channel)
        for i in range(n):
            method, request = _plain_request(lines[i % len(lines)])
            started = time.perf_counter()
            getattr(stub, method)(request, timeout=30)
            seconds.append(time.perf_counter() - started)
    return seconds


def test_latency_agrees_with_a_plain_client_and_the_servers_own_timing(
    load_server: ServerThread, tmp_path: Path
) -> None:
    lines = _real_lines(9)
    mix = write_mix(tmp_path, lines)
    report_path = tmp_path / "latency.json"
    assert load_server.server is not None
    metrics_port = load_server.server.metrics_port
    _plain_calls(load_server.address, lines, len(lines))  # warm-up for both, untimed

    # The load tester with one client: the same requests, one at a time, in the same order.
    handling_before = _handling(metrics_port)
    ran = run_load(
        "--target", load_server.address, "--mix", str(mix), "-c", "1", "-n", "27",
        "--warmup-requests", "0", "--warmup-seconds", "0", "--json", str(report_path), "--quiet",
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    handling_after = _handling(metrics_port)
    report = json.loads(report_path.read_text())
    assert report["requests"]["ok"] == 27

    plain = _plain_calls(load_server.address, lines, 27)
    load_p50 = report["latency_ms"]["p50_ms"]
    plain_p50 = statistics.median(plain) * 1000
    assert 1 / 3 <= load_p50 / plain_p50 <= 3, (load_p50, plain_p50)

    # The server's view lies inside the client's: its per-response timing and its handling
    # histogram over exactly these 27 calls are below what the load tester measured.
    assert report["server_total_ms"]["p50_ms"] <= load_p50
    assert handling_after[1] - handling_before[1] == 27
    server_seconds = handling_after[0] - handling_before[0]
    client_seconds = report["latency_ms"]["mean_ms"] * 27 / 1000
    assert server_seconds <= client_seconds + 1e-4, (server_seconds, client_seconds)
