"""The README's examples run as written: its `seq2seq` command lines and its Python
snippets, from the repository root, against a real server (only the addresses differ)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.client.conftest import ServerThread, run_cli
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
COMMANDS = [
    shlex.split(line)[1:]
    for language, body in BLOCKS
    if language == "bash"
    for line in body.splitlines()
    if line.startswith("seq2seq ")
]
SNIPPETS = [body for language, body in BLOCKS if language == "python"]


def test_the_readme_has_examples() -> None:
    assert len(COMMANDS) >= 3 and SNIPPETS


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args)[:60])
def test_command_line_example(args: list[str], served: ServerThread) -> None:
    result = run_cli(*args, "--target", served.address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.splitlines()[0][:40])
def test_python_example(snippet: str, served: ServerThread) -> None:
    assert served.server is not None
    code = snippet.replace("localhost:50051", served.address).replace(  # the gRPC port...
        "localhost:8000",
        f"127.0.0.1:{served.server.http_port}",  # ...and the HTTP one
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
