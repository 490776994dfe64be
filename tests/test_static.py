"""Lint, types, the layer walls and the import graph, checked on every test run."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SLOW_MODULES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "seq2seq_client", "model_export")

# The rooms of the house, top floor first: a module may import from its own room and from
# rooms on lower floors, never from a room on its own floor or above. A module belongs to the
# room with the longest matching prefix.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("model_export",),  # trains and exports bundles; uses the contract and the offline API
    ("service.__main__",),  # `python -m service`
    ("service.server",),  # the composition root: `seq2seq-serve`, front ends, followers
    ("service.api", "service.http"),  # the protocol converters: gRPC; HTTP and LibreTranslate
    ("service.serving", "service.metrics"),  # the front door, data plane, documents, models
    ("service.engine_process", "service.formats"),  # the engine process; translated files
    ("service.engine",),  # the synchronous engine core and its offline API
    ("service.params",),  # the one decoding-parameters type
    ("service.text", "service.bundle"),  # text handling; the bundle contract
    (
        "service.auth",
        "service.errors",
        "service.settings",
        "service.lifeline",
        "service.logging_setup",
        "service.metrics_merge",
        "service.families",
        "service",
    ),
    ("seq2seq_client.loadtest",),  # the load tester, over the SDK
    ("seq2seq_client",),  # the SDK and the `seq2seq` command line
    ("seq2seq_client.tasks", "seq2seq_client.gen"),  # the task table, the generated stubs
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of our packages (generated stubs left out)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[:2] == ["seq2seq_client", "gen"]:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(path: Path) -> Iterator[str]:
    """Every absolute module name `path` imports, at any depth (TYPE_CHECKING included)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    """Module -> the modules of our packages it imports (its own package's __init__ aside)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {owner(target) for target in _imported(path)}
        graph[name] = {
            t for t in targets if t is not None and t != name and not name.startswith(f"{t}.")
        }
    return graph


def _room(module: str) -> tuple[int, str]:
    """(floor, room) of a module: the longest room prefix that matches."""
    best = (-1, "")
    for floor, rooms in enumerate(FLOORS):
        for room in rooms:
            if (module == room or module.startswith(f"{room}.")) and len(room) > len(best[1]):
                best = (floor, room)
    assert best[0] >= 0, f"{module} is in no room of FLOORS"
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_ruff_lint_and_format() -> None:
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_on_the_serving_and_client_packages() -> None:
    result = _run("mypy", "service", "seq2seq_client")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_import_runs_up_or_across_a_floor() -> None:
    crossings = []
    for module, targets in _graph().items():
        floor, room = _room(module)
        for target in targets:
            target_floor, target_room = _room(target)
            if target_room != room and target_floor <= floor:
                crossings.append(f"{module} -> {target}")
    assert sorted(crossings) == []


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_graph_checks_see_a_cycle_and_a_crossing() -> None:
    """The two checks above can fail: a made-up graph with both."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _room("service.engine.core")[0] > _room("service.serving.front_door")[0]
    assert _room("service.server.server") == (2, "service.server")


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("service", r"^\s*(import torch|from torch\b)"),
        (
            "service/engine",
            r"^\s*(import grpc|from grpc\b|import prometheus_client|from prometheus_client\b"
            r"|import asyncio|from asyncio\b)",
        ),
        *(
            (
                f"service/engine_process/{name}.py",
                r"^\s*(import grpc|from grpc\b|import prometheus_client|from prometheus_client\b"
                r"|import asyncio|from asyncio\b)",
            )
            for name in ("worker", "wire", "engine_thread")  # the engine process's side
        ),
        ("service/api", r"^\s*(import onnxruntime|from onnxruntime\b)"),
        ("service/http", r"^\s*(import onnxruntime|from onnxruntime\b|import grpc|from grpc\b)"),
        (
            "seq2seq_client",
            r"^\s*(import onnxruntime|from onnxruntime\b|import service\b|from service\b)",
        ),
    ],
)
def test_layer_walls(folder: str, forbidden: str) -> None:
    pattern = re.compile(forbidden, re.M)
    root = ROOT / folder
    paths = [root] if root.is_file() else root.rglob("*.py")
    crossings = [
        str(path.relative_to(ROOT))
        for path in paths
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert crossings == []


def test_the_docs_stand_alone() -> None:
    """The project's documents and sources describe the project; none points outside it."""
    documents = [ROOT / "README.md", *ROOT.glob("*/**/*.md")]
    sources = [
        p for package in (*PACKAGES, "benchmarks", "tests") for p in (ROOT / package).rglob("*.py")
    ]
    outside = re.compile(r"\.\./shared/|DESIGN\.md|STYLE\.md")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (*documents, *sources)
        if ".venv" not in path.parts
        and "node_modules" not in path.parts
        and path != Path(__file__)
        and outside.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_slow_module_exists() -> None:
    """`-m "not slow"` leaves out what tests/conftest.py names: no name may be stale."""
    assert sorted(name for name in SLOW_MODULES if not (ROOT / name).is_file()) == []
