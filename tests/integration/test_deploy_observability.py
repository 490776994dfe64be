"""The Grafana dashboard and the alert rules: valid, and only about metrics we export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from tests.conftest import REPO_ROOT
from tests.integration.conftest import scrape

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "seq2seq-dashboard.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
# Metric names in PromQL: ours (grpc_server_*, seq2seq_*) and the process collector's.
METRIC_NAME = re.compile(r"\b(?:grpc_server|seq2seq|process)_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def _exported_names(metrics_text: str) -> set[str]:
    """Every sample name the server can expose, children or not yet."""
    return {
        family.name + suffix
        for family in text_string_to_metric_families(metrics_text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_dashboard_is_grafana_json_with_queries() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    graphs = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert graphs and all(p.get("targets") for p in graphs)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used = set(METRIC_NAME.findall(" ".join(_dashboard_exprs())))
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "seq2seq_queue_seconds_bucket",
        "seq2seq_batch_size_sum",
        "seq2seq_output_tokens_total",
        "seq2seq_model_info",
    } <= used


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.asyncio(loop_scope="session")
async def test_every_metric_the_dashboard_and_alerts_use_is_exported(server, stub) -> None:
    await stub.ListModels(pb.ListModelsRequest(), timeout=10)
    exported = _exported_names(scrape(server.metrics_port))
    for source, text in (
        ("dashboard", " ".join(_dashboard_exprs())),
        ("alerts", ALERTS.read_text()),
    ):
        used = set(METRIC_NAME.findall(text))
        assert used, source
        assert used <= exported, (
            f"{source} uses metrics the server does not export: {used - exported}"
        )
