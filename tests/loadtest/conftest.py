"""A real server on loopback for the load tester, mix-file factories, the CLI as users run it."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from seq2seq_client.loadtest.cli import main
from tests.client.conftest import ServerThread
from tests.integration.conftest import scrape

SEQ2SEQ_METHODS = ("Translate", "Summarize", "Answer", "ListModels")
SERVICE = "seq2seq.v1.Seq2Seq"


@pytest.fixture(scope="session")
def load_server() -> Iterator[ServerThread]:
    """One plaintext server over the three default models, shared by this folder's tests."""
    with ServerThread() as server:
        yield server


def write_mix(folder: Path, lines: list[Any], name: str = "mix.jsonl") -> Path:
    """A mix file: dicts become JSON lines, strings are written as they are."""
    path = folder / name
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def translate(text: str = "Lua bindings for Pure Data", **fields: Any) -> dict[str, Any]:
    return {"rpc": "Translate", "text": text, "target_language": "fr", **fields}


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def run_load(*args: str) -> Ran:
    """`seq2seq-load ARGS` in this process (main() returns the exit status)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Ran(code, out.getvalue(), err.getvalue())


def handled(server: ServerThread) -> dict[tuple[str, str], float]:
    """(method, code) -> grpc_server_handled_total of the Seq2Seq service, every code, scraped
    over HTTP from the server's own metrics port."""
    assert server.server is not None
    table: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(scrape(server.server.metrics_port)):
        for sample in family.samples:
            labels = sample.labels
            if sample.name != "grpc_server_handled_total" or labels.get("grpc_service") != SERVICE:
                continue
            key = (labels["grpc_method"], labels["grpc_code"])
            table[key] = table.get(key, 0.0) + sample.value
    return table


def started(server: ServerThread) -> float:
    """Every Seq2Seq call the server has started (ListModels included)."""
    return sum(server.calls(method) for method in SEQ2SEQ_METHODS)
