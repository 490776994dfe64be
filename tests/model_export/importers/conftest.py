"""Checkpoints built once per session (factories.py) and their imported bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_export.importers.importer import ImportResult, import_checkpoint
from tests.model_export.importers.factories import make_bart, make_marian


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> a Hugging Face checkpoint folder (read-only for tests: copy to change it)."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "marian": make_marian(root / "marian"),
        "bart": make_bart(root / "bart"),
        "mbart": make_bart(root / "mbart", mbart=True),
    }


@pytest.fixture(scope="session")
def imported(
    checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ImportResult]:
    """name -> its bundle in one repository (read-only for tests)."""
    repo = tmp_path_factory.mktemp("imported")
    options = {"marian": {"languages": "en-fr"}, "mbart": {"task": "summarize"}}
    return {
        name: import_checkpoint(
            folder, repo=repo, name=name, version=1, log=lambda _: None, **options.get(name, {})
        )
        for name, folder in checkpoints.items()
    }
