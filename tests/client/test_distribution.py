"""The client distribution (protos/python) on its own: built from just the files it names,
installed in a clean virtual environment, calling a real server; no server dependency."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.client.conftest import ServerThread
from tests.conftest import REPO_ROOT

tomllib = pytest.importorskip("tomllib")

CLIENT_PROJECT = REPO_ROOT / "protos" / "python"
# What the client distribution is made of; nothing else of the repository is copied.
CLIENT_FILES = (
    "protos/python",
    "seq2seq_client",
)
SERVER_ONLY = {"onnxruntime", "onnxruntime-gpu", "numpy", "pydantic", "tokenizers", "torch"}


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv (no system site-packages) with only the client wheel and its deps."""
    root = tmp_path_factory.mktemp("client-dist")
    source = root / "source"
    for name in CLIENT_FILES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", root / "dist",
         source / "protos" / "python")  # fmt: skip
    (wheel,) = (root / "dist").glob("seq2seq_client-*.whl")
    venv.create(root / "venv", with_pip=True)
    _run(root / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    return root / "venv"


def test_the_client_installs_without_the_server(clean_venv: Path) -> None:
    listed = _run(clean_venv / "bin" / "python", "-m", "pip", "list", "--format=freeze")
    installed = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"seq2seq-client", "grpcio", "protobuf"} <= installed
    assert installed & SERVER_ONLY == set()


def test_the_command_line_calls_a_server(clean_venv: Path, served: ServerThread) -> None:
    out = _run(clean_venv / "bin" / "seq2seq", "translate", "A tool to compress files",
               "--to", "fr", "--target", served.address, cwd=clean_venv)  # fmt: skip
    assert out.strip()
    models = _run(clean_venv / "bin" / "seq2seq", "models", "--target", served.address)
    assert "translate-en-fr" in models


def test_the_sdk_and_the_load_tester_call_a_server(clean_venv: Path, served: ServerThread) -> None:
    code = (
        "import sys; from seq2seq_client import Seq2SeqClient\n"
        f"with Seq2SeqClient({served.address!r}) as client:\n"
        "    print(client.summarize('A library for parsing command line options.').text)\n"
        "assert 'numpy' not in sys.modules and 'onnxruntime' not in sys.modules"
    )
    assert _run(clean_venv / "bin" / "python", "-c", code, cwd=clean_venv).strip()
    _run(clean_venv / "bin" / "seq2seq-load", "--target", served.address, "-n", "6",
         "--warmup-requests", "2", "-c", "2", "--quiet", cwd=clean_venv)  # fmt: skip


def test_client_and_server_versions_agree() -> None:
    def version(folder: Path) -> str:
        return tomllib.loads((folder / "pyproject.toml").read_text())["project"]["version"]

    assert version(CLIENT_PROJECT) == version(REPO_ROOT)
