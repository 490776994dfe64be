"""Lint, types and the layer walls of STYLE.md, checked on every test run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint_and_format() -> None:
    lint = _run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_on_the_serving_package() -> None:
    result = _run("mypy", "service", "seq2seq_client")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("service", r"^\s*(import torch|from torch\b)"),
        (
            "service/engine",
            r"^\s*(import grpc|from grpc\b|import prometheus_client|from prometheus_client\b"
            r"|import asyncio|from asyncio\b)",
        ),
        ("service/api", r"^\s*(import onnxruntime|from onnxruntime\b)"),
        (
            "seq2seq_client",
            r"^\s*(import onnxruntime|from onnxruntime\b|import service\b|from service\b)",
        ),
    ],
)
def test_layer_walls(folder: str, forbidden: str) -> None:
    pattern = re.compile(forbidden, re.M)
    crossings = [
        str(path.relative_to(ROOT))
        for path in (ROOT / folder).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert crossings == []


def test_the_docs_stand_alone() -> None:
    """The project's documents describe the project; none points outside the repository."""
    documents = [ROOT / "README.md", *ROOT.glob("*/**/*.md")]
    outside = re.compile(r"\.\./shared/|DESIGN\.md")
    offenders = [
        str(path.relative_to(ROOT))
        for path in documents
        if ".venv" not in path.parts and outside.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
