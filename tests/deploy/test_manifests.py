"""The Kubernetes manifests: render, validate, and keep the server's contract."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from service.metrics import Metrics
from service.settings import Settings
from tests.deploy.conftest import ADAPTER_VALUES, K8S, ROOT, one, render, rendered

tomllib = pytest.importorskip("tomllib")

Rendered = tuple[str, list[dict[str, Any]]]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Seq2Seq"].full_name
# Oldest Kubernetes we document (gRPC probes are GA from 1.27) and the newest schema shipped.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
CUSTOM_RESOURCES = {"ServiceMonitor"}  # no schema in kubernetes-validate: checked below
# Seconds the server needs after the drain grace period and gRPC's stop (drain_quiet_period):
# engines stop (1 s) and slack (1 s).
STOP_SECONDS = 2


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment", "seq2seq")["spec"]["template"]


def _server(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = [c for c in _pod(objects)["spec"]["containers"] if c["name"] == "server"]
    return container


def _settings_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    return one(objects, "ConfigMap", "seq2seq-settings")["data"]


def _settings(objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEQ2SEQ_{name.upper()}", raising=False)
    for name, value in _settings_env(objects).items():
        monkeypatch.setenv(name, value)
    return Settings()


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_base_renders() -> None:
    kinds = {o["kind"] for o in render(K8S / "base")}
    assert kinds == {
        "ServiceAccount",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    overlay: Rendered, version: str
) -> None:
    _, objects = overlay
    unchecked = set()
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unchecked.add(obj["kind"])
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} ({version}): {exc}")
    assert unchecked <= CUSTOM_RESOURCES


def test_probes_are_grpc_on_the_grpc_port(overlay: Rendered) -> None:
    _, objects = overlay
    server = _server(objects)
    ports = _ports(server)
    assert ports == {
        "grpc": Settings.model_fields["port"].default,
        "http": Settings.model_fields["http_port"].default,
        "metrics": Settings.model_fields["metrics_port"].default,
    }
    probes = {kind: server[f"{kind}Probe"] for kind in ("startup", "readiness", "liveness")}
    for probe in probes.values():
        assert set(probe) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}
        assert probe["grpc"]["port"] == ports["grpc"]
    assert probes["readiness"]["grpc"]["service"] == SERVICE_NAME
    assert probes["liveness"]["grpc"].get("service", "") == ""


def test_settings_env_names_real_settings_and_validates(
    overlay: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, objects = overlay
    known = {f"SEQ2SEQ_{name.upper()}" for name in Settings.model_fields}
    env = _settings_env(objects)
    assert set(env) <= known, set(env) - known
    try:
        settings = _settings(objects, monkeypatch)
    except ValidationError as exc:
        pytest.fail(f"the ConfigMap's settings do not validate: {exc}")
    ports = _ports(_server(objects))
    assert (settings.port, settings.metrics_port) == (ports["grpc"], ports["metrics"])
    assert settings.log_format == "json"
    assert settings.repository_poll_interval > 0
    assert str(settings.model_repository) == "/models"
    assert "SEQ2SEQ_DRAIN_GRACE_PERIOD" in env


def test_server_reads_the_settings_config_map(overlay: Rendered) -> None:
    _, objects = overlay
    refs = [e["configMapRef"]["name"] for e in _server(objects)["envFrom"]]
    assert refs == [one(objects, "ConfigMap", "seq2seq-settings")["metadata"]["name"]]


def test_grace_period_outlasts_pre_stop_and_drain(
    overlay: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, objects = overlay
    pre_stop = _server(objects)["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        sleep = float(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep", command
        sleep = float(command[1])
    settings = _settings(objects, monkeypatch)
    grace = _pod(objects)["spec"]["terminationGracePeriodSeconds"]
    assert grace > sleep + settings.drain_grace_period + settings.drain_quiet_period + STOP_SECONDS


def test_nothing_runs_as_root_on_a_writable_root(overlay: Rendered) -> None:
    _, objects = overlay
    spec = _pod(objects)["spec"]
    pod_context = spec["securityContext"]
    assert pod_context["runAsNonRoot"] is True
    assert pod_context["runAsUser"] == 10001
    assert pod_context["seccompProfile"]["type"] == "RuntimeDefault"
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container["securityContext"]
        assert context.get("runAsNonRoot", pod_context["runAsNonRoot"]) is True
        assert context.get("runAsUser", pod_context["runAsUser"]) != 0
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context.get("privileged", False) is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]
    assert spec["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in _server(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_models_come_from_a_read_only_volume(overlay: Rendered) -> None:
    _, objects = overlay
    spec = _pod(objects)["spec"]
    (mount,) = [m for m in _server(objects)["volumeMounts"] if m["mountPath"] == "/models"]
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    claim = volume["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    one(objects, "PersistentVolumeClaim", claim["claimName"])
    assert _settings_env(objects)["SEQ2SEQ_MODEL_REPOSITORY"] == "/models"


def test_only_the_gpu_overlay_asks_for_a_gpu(
    overlay: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, objects = overlay
    spec = _pod(objects)["spec"]
    resources = _server(objects)["resources"]
    settings = _settings(objects, monkeypatch)
    if name == "gpu":
        assert int(resources["limits"]["nvidia.com/gpu"]) >= 1
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
        assert spec["nodeSelector"]
        assert settings.require_gpu and settings.providers[0] == "cuda"
    else:
        assert "nvidia.com/gpu" not in json.dumps(objects)
        assert "tolerations" not in spec and "nodeSelector" not in spec
        assert settings.providers == ("cpu",) and not settings.require_gpu
        threads = settings.intra_op_threads
        assert str(threads) == resources["limits"]["cpu"] == resources["requests"]["cpu"]


def test_image_names_and_tags_are_consistent() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    names = set()
    for name in ("gpu", "cpu"):
        images = {c["image"] for c in _pod(rendered(name))["spec"]["containers"]}
        (image,) = images
        repository, tag = image.rsplit(":", 1)
        assert tag == f"{version}-{name}"
        assert repository.rsplit("/", 1)[-1] == "seq2seq-serve"
        names.add(repository)
    assert len(names) == 1


def test_services_headless_and_cluster_ip(overlay: Rendered) -> None:
    _, objects = overlay
    labels = _pod(objects)["metadata"]["labels"]
    headless = one(objects, "Service", "seq2seq-headless")
    assert headless["spec"]["clusterIP"] == "None"
    cluster_ip = next(
        o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "seq2seq"
    )
    assert cluster_ip["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert "clusterIP" not in cluster_ip["spec"]
    for service in (headless, cluster_ip):
        assert _matches(service["spec"]["selector"], labels)
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert ports["grpc"]["port"] == 50051 and ports["grpc"]["targetPort"] == "grpc"
    assert {p["name"] for p in cluster_ip["spec"]["ports"]} == {"grpc", "http", "metrics"}


def _adapter_rules() -> dict[str, dict[str, Any]]:
    values = yaml.safe_load(ADAPTER_VALUES.read_text(encoding="utf-8"))
    return {rule["name"]["as"]: rule for rule in values["rules"]["custom"]}


def test_hpa_scales_the_deployment_on_metrics_the_adapter_serves(
    overlay: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, objects = overlay
    hpa = one(objects, "HorizontalPodAutoscaler", "seq2seq")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "seq2seq")
    assert "replicas" not in one(objects, "Deployment", "seq2seq")["spec"]
    assert hpa["spec"]["minReplicas"] >= 2
    rules = _adapter_rules()
    exported = {family.name for family in Metrics().registry.collect()}
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods
    for metric in pods:
        name = metric["metric"]["name"]
        assert name in rules, f"no prometheus-adapter rule serves {name}"
        rule = rules[name]
        assert rule["seriesQuery"].startswith(f"{name}{{")
        assert name in exported, f"the server exports no {name}"
        overrides = rule["resources"]["overrides"]
        assert overrides["pod"]["resource"] == "pod"
        assert overrides["namespace"]["resource"] == "namespace"
    inflight = next(m for m in pods if m["metric"]["name"] == "seq2seq_inflight_requests")
    max_batch = _settings(objects, monkeypatch).max_batch_size
    assert 0 < float(inflight["target"]["averageValue"]) < max_batch


def test_disruption_budget_leaves_pods_serving(overlay: Rendered) -> None:
    _, objects = overlay
    pdb = one(objects, "PodDisruptionBudget", "seq2seq")
    assert _matches(pdb["spec"]["selector"]["matchLabels"], _pod(objects)["metadata"]["labels"])
    min_replicas = one(objects, "HorizontalPodAutoscaler", "seq2seq")["spec"]["minReplicas"]
    assert pdb["spec"]["maxUnavailable"] < min_replicas


def test_service_monitor_scrapes_the_metrics_port(overlay: Rendered) -> None:
    _, objects = overlay
    monitor = one(objects, "ServiceMonitor", "seq2seq")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert all(e.get("path", "/metrics") == "/metrics" for e in monitor["spec"]["endpoints"])
    selected = [
        o
        for o in objects
        if o["kind"] == "Service"
        and _matches(monitor["spec"]["selector"]["matchLabels"], o["metadata"]["labels"])
    ]
    # One Service, so each pod is scraped once (not again through the headless one).
    assert [s["metadata"]["name"] for s in selected] == ["seq2seq"]
    assert "metrics" in {p["name"] for p in selected[0]["spec"]["ports"]}


def test_network_policy_opens_grpc_in_cluster_and_metrics_to_monitoring(
    overlay: Rendered,
) -> None:
    _, objects = overlay
    policy = one(objects, "NetworkPolicy", "seq2seq")["spec"]
    assert _matches(policy["podSelector"]["matchLabels"], _pod(objects)["metadata"]["labels"])
    assert policy["policyTypes"] == ["Ingress"]
    by_port = {port["port"]: rule["from"] for rule in policy["ingress"] for port in rule["ports"]}
    assert set(by_port) == set(_ports(_server(objects)))
    assert all("namespaceSelector" in peer for peer in by_port["grpc"])
    assert by_port["metrics"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def test_connection_age_is_set_once_the_server_has_the_setting(overlay: Rendered) -> None:
    """Clients re-resolve the headless Service only when a connection ends (docs/deploy.md)."""
    _, objects = overlay
    ages = [name for name in Settings.model_fields if "connection_age" in name]
    env = _settings_env(objects)
    for name in ages:
        assert f"SEQ2SEQ_{name.upper()}" in env


def test_the_overlay_creates_its_namespace(overlay: Rendered) -> None:
    _, objects = overlay
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    used = {o["metadata"]["namespace"] for o in objects if o["kind"] != "Namespace"}
    assert namespaces == used == {"seq2seq"}
