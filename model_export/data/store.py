"""Write and read the prepared JSONL files and their manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from model_export.data.errors import DataError
from model_export.data.split import SPLITS

LANGUAGES = ("fr", "de", "it")
DATASETS = [*(f"translate-en-{lang}" for lang in LANGUAGES), "summarize", "answer"]
MANIFEST = "manifest.json"

_KEYS = {  # dataset kind -> fields every record must carry
    "translate": ("id", "source", "target"),
    "summarize": ("id", "source", "target"),
    "answer": ("id", "question", "context", "answer", "answerable"),
}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_jsonl(path: Path, records: list[dict]) -> dict:
    """Write one record per line (sorted keys: equal data, equal bytes); return its entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    return {"file": path.name, "count": len(records), "sha256": file_sha256(path)}


def write_manifest(out_dir: Path, manifest: dict) -> None:
    """Write manifest.json deterministically (no wall-clock time in it, see README)."""
    text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    (out_dir / MANIFEST).write_text(text, encoding="utf-8")


def dataset_sha256(out_dir: Path) -> str:
    """One fingerprint of a prepared folder: sha256 of its manifest (which hashes every file)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"{path} is missing; run `python -m model_export.data prepare` first")
    return file_sha256(path)


def _kind(dataset: str) -> str:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    return "translate" if dataset.startswith("translate-") else dataset


def load_split(out_dir: Path, dataset: str, split: str) -> list[dict]:
    """Read one prepared split; raise DataError naming the file if missing, empty or corrupt.

    When the manifest is present the file's sha256 is checked against it, so a file edited
    or truncated after `prepare` is caught here rather than as a strange metric later.
    """
    keys = _KEYS[_kind(dataset)]
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    path = Path(out_dir) / dataset / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path} is missing; run `python -m model_export.data prepare` first")
    expected = _manifest_entry(Path(out_dir), dataset, split)
    if expected is not None and file_sha256(path) != expected.get("sha256"):
        raise DataError(f"{path} does not match the sha256 in {Path(out_dir) / MANIFEST}")
    records = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno} is not valid JSON: {exc.msg}") from exc
            if not isinstance(record, dict) or any(k not in record for k in keys):
                raise DataError(f"{path}:{lineno} lacks one of the fields {list(keys)}")
            records.append(record)
    if not records:
        raise DataError(f"{path} is empty")
    return records


def _manifest_entry(out_dir: Path, dataset: str, split: str) -> dict | None:
    path = out_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return manifest["datasets"][dataset]["splits"][split]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is corrupt or lacks {dataset}/{split}: {exc}") from exc
