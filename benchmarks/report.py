"""What every benchmark script shares: the machine it ran on, a printed table, the JSON file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import onnxruntime as ort

from seq2seq_client.loadtest.report import machine


def environment() -> dict[str, Any]:
    """The machine and library versions, and the load when the run started."""
    fields = machine()
    fields.pop("hostname")
    return {**fields, "onnxruntime": ort.__version__}


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}", flush=True)
