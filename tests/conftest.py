"""Shared test constants: where the bundles and the held-out examples are."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

from service.settings import DEFAULT_MODEL_REPOSITORY

# Property tests check behaviour, not speed: no per-example deadline (a shared 2-core CI box
# once took 269 ms for an example hypothesis allows 200 ms).
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

REPO_ROOT = Path(__file__).resolve().parents[1]
# The committed default bundles; SEQ2SEQ_TEST_MODELS runs the suite against another repository.
TEST_MODELS = Path(os.environ.get("SEQ2SEQ_TEST_MODELS", DEFAULT_MODEL_REPOSITORY))
HELDOUT = REPO_ROOT / "tests" / "fixtures" / "heldout"


def default_bundle(name: str) -> Path:
    """The committed bundle folder of model `name` (its newest version)."""
    versions = [p for p in (TEST_MODELS / name).iterdir() if p.name.isdigit()]
    return max(versions, key=lambda p: int(p.name))


def heldout(dataset: str) -> list[dict]:
    """Held-out test-split records of a dataset (never seen in training)."""
    lines = (HELDOUT / f"{dataset}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# The test modules that train or export a model, build a virtual environment, or start extra
# servers and processes: `pytest -m "not slow"` (a few minutes) leaves them out; CI runs all.
SLOW_MODULES = frozenset(
    {
        "tests/benchmarks/test_compare_commits.py",
        "tests/benchmarks/test_suite.py",
        "tests/benchmarks/test_transformer_cache.py",
        "tests/client/test_distribution.py",
        "tests/integration/test_bundle_figures.py",
        "tests/integration/test_copy_attention.py",
        "tests/integration/test_engine_process.py",
        "tests/integration/test_faults.py",
        "tests/integration/test_frontends.py",
        "tests/integration/test_hard_attention.py",
        "tests/integration/test_imported_parity.py",
        "tests/integration/test_node_client.py",
        "tests/integration/test_prometheus.py",
        "tests/integration/test_transformer_serving.py",
        "tests/model_export/importers/test_import.py",
        "tests/model_export/importers/test_synthetic.py",
        "tests/model_export/importers/test_tokenizers.py",
        "tests/model_export/importers/test_train_marian.py",
        "tests/model_export/importers/test_variant.py",
        "tests/model_export/test_export.py",
        "tests/model_export/test_model.py",
        "tests/model_export/test_transformer.py",
        "tests/model_export/test_variant.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::")[0] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
