"""A client in another language, built from protos/ alone, calls all three RPCs."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.asyncio(loop_scope="session")
NODE_DIR = REPO_ROOT / "tests" / "node"


@pytest.fixture(scope="session")
def node_client() -> list[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js is not installed on this machine")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return [node, str(NODE_DIR / "client.js")]


async def test_node_client_calls_every_rpc(server, node_client: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *node_client,
        f"127.0.0.1:{server.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    replies = json.loads(stdout)
    assert replies["translate"]["hypotheses"][0]["text"]
    assert replies["translate"]["model"]["name"] == "translate-en-fr"
    assert replies["summarize"]["hypotheses"][0]["text"]
    assert replies["answer"]["model"]["name"] == "answer-en"
    assert {m["task"] for m in replies["models"]["models"]} >= {"translate", "summarize", "answer"}
    assert replies["invalid"]["code"] == 3  # INVALID_ARGUMENT
    assert "text" in replies["invalid"]["details"]
