"""`seq2seq-export variant`: inputs are checked before any work, and a failed build leaves
no `.building-N` folder behind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_export.precision import make_variant
from tests.conftest import HELDOUT, REPO_ROOT, TEST_MODELS

SOURCE = TEST_MODELS / "summarize-en" / "1"


def test_missing_test_records_fail_at_once_with_one_line(tmp_path: Path) -> None:
    repo, data = tmp_path / "repo", tmp_path / "no-data"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "model_export", "variant", str(SOURCE)),
            *("--precision", "int8", "--repo", str(repo), "--version", "9", "--data", str(data)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{data / 'summarize' / 'test.jsonl'} is missing" in result.stderr
    assert not repo.exists()  # nothing was started, so nothing is left


def test_a_build_that_fails_midway_removes_its_work_folder(tmp_path: Path) -> None:
    source = tmp_path / "source" / "summarize-en" / "1"
    shutil.copytree(SOURCE, source)
    (source / "tokenizer.json").unlink()  # the graphs convert, then the copy fails
    data = tmp_path / "data" / "summarize"
    data.mkdir(parents=True)
    shutil.copy(HELDOUT / "summarize.jsonl", data / "test.jsonl")
    repo = tmp_path / "repo"
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        make_variant(source, repo, "int8", data_dir=data.parent, version=9)
    assert list((repo / "summarize-en").iterdir()) == []


def test_without_the_export_extra_the_command_says_so_in_one_line() -> None:
    code = (
        "import sys; sys.modules['torch'] = None;"  # as if torch were not installed
        "import importlib.util; find = importlib.util.find_spec;"
        "importlib.util.find_spec = lambda n, *a: None if n == 'torch' else find(n, *a);"
        "from model_export.entry import main; sys.exit(main(['--help']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "the export extra is not installed (no torch)" in result.stderr
