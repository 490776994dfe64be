"""Held-out records from a NEWER Debian suite: packages that no split of the prepared data
contains (their name is not in the base suite's Packages file), for evaluating models on
text newer than their training release.

    python -m model_export.data newer --suite trixie --base-lists runs/data/debian-lists \\
        --out data/newer

writes `<out>/answer/test.jsonl` (every question with a trained AND an unseen phrasing) and
`<out>/summarize/test.jsonl`, with a manifest in the prepared-data format, so every scoring
command reads it like a prepared folder's test split.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from model_export.data.answer import build_answer
from model_export.data.catalog import read_packages, read_translation
from model_export.data.errors import DataError
from model_export.data.sources import SUITE, fetch_lists, locate, release_info
from model_export.data.store import file_sha256, write_jsonl, write_manifest
from model_export.data.summarize import build_summarize

NEWER_SUITE = "trixie"  # Debian 13, the release after the training data's bookworm


def prepare_newer(
    out_dir: Path,
    base_lists: Path,
    lists_dir: Path | None = None,
    *,
    suite: str = NEWER_SUITE,
    base_suite: str = SUITE,
    log: Callable[[str], None] = print,
) -> dict:
    """Build the held-out answer and summarize test files from `suite`'s lists, keeping only
    packages absent from `base_suite`'s Packages file in `base_lists`. Returns the manifest.

    Without lists_dir, `suite`'s lists are fetched with apt-get into <out>/../debian-lists-<suite>.
    """
    out_dir = Path(out_dir)
    if suite == base_suite:
        raise DataError(f"the newer suite must differ from the base suite {base_suite!r}")
    base = locate(Path(base_lists), (), suite=base_suite)
    if lists_dir is None:
        lists_dir = fetch_lists(out_dir.parent / f"debian-lists-{suite}", (), suite=suite, log=log)
    newer = locate(Path(lists_dir), (), suite=suite)
    known = set(read_packages(base.packages))
    packages = read_packages(newer.packages)
    english = read_translation(newer.english, "en")
    log(f"{suite}: {len(packages)} packages, {len(set(packages) - known)} not in {base_suite}")

    def new(package: str) -> bool:
        return package not in known

    answer = build_answer(packages, english, keep=new, unseen=lambda _: True)
    summarize = build_summarize({k: v for k, v in english.items() if new(k[0])})
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        datasets = {}
        for name, records in (("answer", answer), ("summarize", summarize)):
            if not records:
                raise DataError(f"no {name} records from {suite} packages absent in {base_suite}")
            datasets[name] = {"splits": {"test": write_jsonl(tmp / name / "test.jsonl", records)}}
            log(f"{name}: test {len(records)}")
        release = release_info(newer.release)
        manifest = {
            "datasets": datasets,
            "sources": {
                p.name: {"sha256": file_sha256(p)}
                for p in (newer.english, newer.packages, base.packages, newer.release)
                if p is not None
            },
            "release": release,
            "date": release.get("Date"),
            "languages": [],
            "split_rule": f"held out: {suite} packages whose name is not in {base_suite}",
        }
        write_manifest(tmp, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
