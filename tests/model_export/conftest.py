"""Factories for the data tests: the real fixture excerpt, a prepared copy, a broken copy."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from model_export.data import prepare

FIXTURE_LISTS = Path(__file__).parents[1] / "fixtures" / "debian"
PREFIX = "deb.debian.org_debian_dists_bookworm_"  # apt's file-name prefix for our mirror/suite


@pytest.fixture(scope="session")
def fixture_lists() -> Path:
    """The real ~120-package excerpt of bookworm's lists (plain text, read-only)."""
    return FIXTURE_LISTS


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All datasets built once from the fixture; tests only read it."""
    out = tmp_path_factory.mktemp("data") / "prepared"
    prepare(out, FIXTURE_LISTS, ("fr", "de", "it"), log=lambda _: None)
    return out


@pytest.fixture
def make_lists(tmp_path: Path) -> Callable[..., Path]:
    """make_lists(**{suffix: bytes | None}) -> a copy of the fixture with files replaced/removed.

    The keyword is the part of the file name after PREFIX, e.g. "main_i18n_Translation-fr".
    """

    def make(**overrides: bytes | None) -> Path:
        lists = tmp_path / "lists"
        shutil.copytree(FIXTURE_LISTS, lists)
        for suffix, content in overrides.items():
            path = lists / f"{PREFIX}{suffix}"
            path.unlink(missing_ok=True)
            if content is not None:
                path.write_bytes(content)
        return lists

    return make
