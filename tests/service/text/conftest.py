"""Factories for the text tests: gold paragraphs and a token-count `fits` stand-in rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLD = Path(__file__).resolve().parents[2] / "fixtures" / "segmentation" / "gold.jsonl"


@pytest.fixture(scope="session")
def gold() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]


def fits_words(limit: int):
    """A piece fits when it has at most `limit` whitespace-separated words."""
    return lambda text: len(text.split()) <= limit


def always(text: str) -> bool:
    return True
