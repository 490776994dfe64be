"""The README: short, its examples are the files of docs/examples/ and they run as written
(only the addresses differ) against a real server, and CI runs its test command exactly."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.client.conftest import ServerThread
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
EXAMPLES = REPO_ROOT / "docs" / "examples"
RUNNABLE = ("seq2seq ", "curl ", "grpcurl ")  # README lines that call the server
MAX_README_CHARS = 10_000


def _example_blocks() -> list[str]:
    """README blocks that are examples: Python, or shell lines that call the server."""
    return [
        body
        for language, body in BLOCKS
        if language == "python" or (language == "bash" and body.startswith(RUNNABLE))
    ]


def _commands(name: str) -> list[str]:
    """The shell commands of an example file (a backslash continues a line)."""
    return (EXAMPLES / name).read_text(encoding="utf-8").replace("\\\n", "").splitlines()


def test_the_readme_is_short() -> None:
    assert len(README) <= MAX_README_CHARS


def test_every_readme_example_is_a_file_of_docs_examples() -> None:
    files = {p.name: p.read_text(encoding="utf-8") for p in EXAMPLES.iterdir()}
    blocks = _example_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        assert block in files.values(), f"not a file of docs/examples:\n{block}"


def test_ci_runs_the_readme_test_command() -> None:
    """The second command's test line is a line of .ci/run, exactly."""
    (setup,) = [body for language, body in BLOCKS if "python -m pytest" in body]
    (command,) = [line for line in setup.splitlines() if line.startswith("python -m pytest")]
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci


def _env(served: ServerThread) -> dict[str, str]:
    return {**os.environ, "SEQ2SEQ_TARGET": served.address}


@pytest.mark.parametrize("line", _commands("cli.sh"), ids=lambda line: line[:50])
def test_command_line_example(line: str, served: ServerThread) -> None:
    result = subprocess.run(
        ["bash", "-c", line], cwd=REPO_ROOT, env=_env(served), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def _addressed(text: str, served: ServerThread) -> str:
    assert served.server is not None
    http_address = f"127.0.0.1:{served.server.http_port}"
    return text.replace("localhost:50051", served.address).replace("localhost:8000", http_address)


@pytest.mark.parametrize("name", ["sdk.py", "libretranslate.py"])
def test_python_example(name: str, served: ServerThread) -> None:
    code = _addressed((EXAMPLES / name).read_text(encoding="utf-8"), served)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize(("name", "tool"), [("http.sh", "curl"), ("grpcurl.sh", "grpcurl")])
def test_shell_example(name: str, tool: str, served: ServerThread) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    for line in _commands(name):
        result = subprocess.run(
            ["bash", "-c", _addressed(line, served)], cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() and '"error"' not in result.stdout, result.stdout
