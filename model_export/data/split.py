"""Train / valid / test assignment by a stable hash of the package name.

Hashing the name (not shuffling) keeps a package in the same split across runs, snapshots and
datasets, so nothing a model or tokenizer trained on can reappear in another dataset's test.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "valid", "test")
TEST_BUCKETS = 10  # buckets [0, 10) of 100 -> test (10 %)
VALID_BUCKETS = 15  # buckets [10, 15) -> valid (5 %), the rest -> train (85 %)


def split_of(package: str) -> str:
    """Return "train", "valid" or "test" for a package name; pure function of the name."""
    bucket = int(hashlib.sha256(package.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < TEST_BUCKETS:
        return "test"
    if bucket < VALID_BUCKETS:
        return "valid"
    return "train"


def split_records(records: list[dict], *, text_key: str | None = "source") -> dict[str, list[dict]]:
    """Group records by the split of their `id`; drop valid/test records whose text is in train.

    Many packages share boilerplate paragraphs ("This package contains the development
    files."), so an exact-source leak filter keeps the held-out splits honest. Pass
    text_key=None to skip it (answer records are per-package by construction).
    """
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for record in records:
        out[split_of(record["id"])].append(record)
    if text_key is not None:
        seen = {r[text_key] for r in out["train"]}
        for name in ("valid", "test"):
            out[name] = [r for r in out[name] if r[text_key] not in seen]
    return out
