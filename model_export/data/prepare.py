"""Build every dataset from the apt lists into a fresh folder, then swap it into place."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from model_export.data.answer import build_answer
from model_export.data.catalog import read_catalog
from model_export.data.errors import DataError
from model_export.data.sources import SUITE, fetch_lists, locate, release_info
from model_export.data.split import SPLITS, TEST_BUCKETS, VALID_BUCKETS, split_records
from model_export.data.store import LANGUAGES, file_sha256, write_jsonl, write_manifest
from model_export.data.summarize import build_summarize
from model_export.data.translate import build_translate


def prepare(
    out_dir: Path,
    lists_dir: Path | None = None,
    languages: tuple[str, ...] = LANGUAGES,
    *,
    suite: str = SUITE,
    log: Callable[[str], None] = print,
) -> dict:
    """Build all datasets under out_dir and return the manifest.

    Without lists_dir the lists are fetched with apt-get into <out_dir's parent>/debian-lists.
    Output is built in a temporary sibling folder and renamed over out_dir only when complete,
    so a failure never leaves a half-written or half-replaced dataset behind.
    """
    out_dir = Path(out_dir)
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown or not languages:
        raise DataError(f"languages must be a non-empty subset of {LANGUAGES}, got {languages}")
    if lists_dir is None:
        lists_dir = fetch_lists(out_dir.parent / "debian-lists", languages, suite=suite, log=log)
    files = locate(Path(lists_dir), languages, suite=suite)
    log(f"reading lists from {lists_dir}")
    catalog = read_catalog(files.english, files.translations, files.packages, languages)

    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        datasets: dict[str, dict] = {}
        for lang in languages:
            records = build_translate(catalog.english, catalog.translations[lang])
            datasets[f"translate-en-{lang}"] = _write(
                tmp, f"translate-en-{lang}", records, "source", log
            )
        datasets["summarize"] = _write(
            tmp, "summarize", build_summarize(catalog.english), "source", log
        )
        answer = build_answer(catalog.packages, catalog.english)
        datasets["answer"] = _write(tmp, "answer", answer, None, log)
        release = release_info(files.release)
        inputs = [files.english, *files.translations.values(), files.packages]
        manifest = {
            "datasets": datasets,
            "sources": {
                p.name: {"sha256": file_sha256(p)}
                for p in [*inputs, *([files.release] if files.release else [])]
            },
            "release": release,
            "date": release.get("Date"),  # the snapshot's date, not today's: see README
            "languages": list(languages),
            "split_rule": (
                f"bucket = int(sha256(package)[:8], 16) % 100; < {TEST_BUCKETS} test, "
                f"< {VALID_BUCKETS} valid, else train"
            ),
        }
        write_manifest(tmp, manifest)
        _swap(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _write(
    tmp: Path, name: str, records: list[dict], text_key: str | None, log: Callable[[str], None]
) -> dict:
    """Split one dataset, write its three files, and refuse to produce an empty split."""
    splits = split_records(records, text_key=text_key)
    entry: dict[str, dict] = {"splits": {}}
    for split in SPLITS:
        if not splits[split]:
            raise DataError(f"dataset {name} has an empty {split} split; are the lists truncated?")
        entry["splits"][split] = write_jsonl(tmp / name / f"{split}.jsonl", splits[split])
    log(f"{name}: " + ", ".join(f"{s} {len(splits[s])}" for s in SPLITS))
    return entry


def _swap(tmp: Path, out_dir: Path) -> None:
    """Replace out_dir by tmp with renames only; the old folder is removed last."""
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.exists():
        out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except OSError:
        if old.exists():
            old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
