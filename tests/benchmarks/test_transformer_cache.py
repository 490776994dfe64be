"""Smoke run of benchmarks/transformer_cache.py at a tiny shape: the old export (from git
history) and the new one of one checkpoint load and decode through the offline API;
plumbing and JSON shape, no speed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks.transformer_cache import CASES, OLD_REV, Settings, run
from tests.conftest import REPO_ROOT

TINY = Settings(
    rounds=1,
    threads=1,
    output_tokens=4,
    max_target_length=8,
    batched_requests=2,
    single_requests=1,
    vocab_size=300,
    shape={
        "architecture": "transformer",
        "embedding_size": 16,
        "hidden_size": 32,
        "layers": 1,
        "heads": 2,
        "ffn_size": 64,
        "dropout": 0.0,
    },
)


def _has_old_revision() -> bool:
    found = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{OLD_REV}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


pytestmark = pytest.mark.skipif(
    not _has_old_revision(), reason=f"the old export's revision {OLD_REV[:7]} is not in git"
)


def test_the_benchmark_writes_every_case(tmp_path: Path) -> None:
    report = run(tmp_path, TINY)
    written = json.loads((tmp_path / "transformer_cache.json").read_text())
    assert written["rows"] == report["rows"]
    assert [row["case"] for row in written["rows"]] == [case for case, _, _ in CASES]
    for row in written["rows"]:
        assert row["old"]["tokens_per_second"] > 0 and row["new"]["tokens_per_second"] > 0
        assert len(row["speedup_per_round"]) == 1
    assert written["settings"]["checkpoint"] == "random"
    old, new = written["bundles"]["old"], written["bundles"]["new"]
    assert old["schema_version"] == 1 and [s["name"] for s in old["states"]] == [
        "self_keys",
        "self_values",
        "position",
    ]
    assert new["schema_version"] == 2 and new["states"][0]["source_axis"] == 2
