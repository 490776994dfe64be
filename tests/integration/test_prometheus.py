"""A real Prometheus scrapes the server on loopback; the series it stores are checked."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from tests.conftest import REPO_ROOT
from tests.integration.conftest import metric

PROMETHEUS = shutil.which("prometheus")
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
WAIT = 60.0  # seconds for Prometheus to start, scrape and answer on a busy machine

pytestmark = [
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (.ci/run does)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode())


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict]:
        answer = _get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    async def wait_value(self, promql: str, expected: float) -> list[dict]:
        """Poll until the query has one series whose value is `expected` (bounded)."""
        deadline = time.monotonic() + WAIT
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = await asyncio.to_thread(self.query, promql)
            if len(result) == 1 and float(result[0]["value"][1]) == expected:
                return result
            await asyncio.sleep(0.25)
        raise AssertionError(f"{promql}: wanted one series = {expected}, last answer {result}")


@pytest.fixture(scope="session")
def prometheus(server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping the session server's metrics port every second."""
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    rules = folder / "alerts.yml"
    shutil.copy(ALERTS, rules)
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files: ['{rules}']\n"
        "scrape_configs:\n"
        "  - job_name: seq2seq\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.metrics_port}']\n"
    )
    port = _free_port()
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{Path(log.name).read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready:\n{Path(log.name).read_text()}")
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_prometheus_stores_what_the_server_exports(server, stub, prometheus) -> None:
    await stub.Translate(pb.TranslateRequest(text="A free tool.", target_language="fr"), timeout=30)
    await stub.Translate(
        pb.TranslateRequest(text="Free software.", target_language="fr"), timeout=30
    )
    await stub.Summarize(pb.SummarizeRequest(text="A tool to compress files."), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Summarize(pb.SummarizeRequest(text=""), timeout=30)

    # What the server holds now is what Prometheus must end up with (no calls in between).
    port = server.metrics_port
    rpc = 'grpc_service="seq2seq.v1.Seq2Seq",grpc_type="unary"'
    for method, code in (
        ("Translate", "OK"),
        ("Summarize", "OK"),
        ("Summarize", "INVALID_ARGUMENT"),
    ):
        expected = await metric(
            port,
            "grpc_server_handled_total",
            grpc_service="seq2seq.v1.Seq2Seq",
            grpc_method=method,
            grpc_code=code,
        )
        assert expected is not None and expected >= 1
        await prometheus.wait_value(
            f'grpc_server_handled_total{{{rpc},grpc_method="{method}",grpc_code="{code}"}}',
            expected,
        )

    (info,) = await prometheus.wait_value(
        'seq2seq_model_info{model="translate-en-fr",provider="CPUExecutionProvider"}', 1
    )
    assert info["metric"]["job"] == "seq2seq"
    assert info["metric"]["task"] == "translate" and info["metric"]["precision"] == "fp32"
    served = await metric(port, "seq2seq_models_loaded")
    await prometheus.wait_value("seq2seq_models_loaded", served)
    await prometheus.wait_value('up{job="seq2seq"}', 1)
    # Histograms arrive whole: the +Inf bucket of the decoder's compute time equals its count.
    count = await metric(
        port, "seq2seq_compute_seconds_count", model="translate-en-fr", stage="decoder"
    )
    await prometheus.wait_value(
        'seq2seq_compute_seconds_bucket{model="translate-en-fr",stage="decoder",le="+Inf"}', count
    )
    tokens = await asyncio.to_thread(
        prometheus.query, 'seq2seq_output_tokens_total{model="translate-en-fr"}'
    )
    assert tokens and float(tokens[0]["value"][1]) > 0

    # The alert rules load into this Prometheus and evaluate without errors.
    async def rules_healthy() -> list[dict]:
        answer = await asyncio.to_thread(_get, f"{prometheus.url}/api/v1/rules")
        return [r for g in answer["data"]["groups"] for r in g["rules"]]

    rules = await rules_healthy()
    deadline = time.monotonic() + WAIT
    while any(r.get("health") != "ok" for r in rules) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        rules = await rules_healthy()
    assert len(rules) >= 8 and all(r["health"] == "ok" for r in rules), rules
    firing = {r["name"] for r in rules if r.get("state") == "firing"}
    assert not firing & {"Seq2SeqNoModelLoaded", "Seq2SeqNoHealthyModel"}
