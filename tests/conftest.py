"""Shared test constants: where the bundles and the held-out examples are."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
