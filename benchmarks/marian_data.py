"""Held-out English <-> Brazilian Portuguese pairs from Debian, built the way
`model_export.data` builds its fr/de/it datasets (same join, cleaning, split by package name).

    python -m benchmarks.marian_data --out data/marian        # fetches the lists with apt-get
    python -m benchmarks.marian_data --out data/marian --lists-dir data/debian-lists

Writes `<out>/translate-en-pt/{train,valid,test}.jsonl` (records {"id", "source": English,
"target": Portuguese}) and `<out>/manifest.json` (sources' sha256, the snapshot). The
students were never trained on this split's rule, so "held-out" here means: a test split
chosen by the same stable hash of the package name as every other dataset of this project.
apt names the pt_BR list `Translation-pt%5fBR`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_export.data.catalog import read_packages, read_translation
from model_export.data.errors import DataError
from model_export.data.sources import SUITE, fetch_lists, locate, release_info
from model_export.data.split import SPLITS, split_records
from model_export.data.store import file_sha256, write_jsonl, write_manifest
from model_export.data.translate import build_translate

LANGUAGE = "pt_BR"  # Debian's code
DATASET = "translate-en-pt"
APT_NAME = "pt%5fBR"  # how apt spells it in the list file name


def build(out_dir: Path, lists_dir: Path | None) -> dict:
    if lists_dir is None:
        lists_dir = fetch_lists(out_dir.parent / "debian-lists", (LANGUAGE,))
    files = locate(Path(lists_dir), (APT_NAME,), suite=SUITE)
    english = read_translation(files.english, "en")
    portuguese = read_translation(files.translations[APT_NAME], LANGUAGE)
    read_packages(files.packages)  # the same inputs as `prepare` checks
    splits = split_records(build_translate(english, portuguese), text_key="source")
    entry: dict[str, dict] = {"splits": {}}
    for split in SPLITS:
        if not splits[split]:
            raise DataError(f"{DATASET} has an empty {split} split; are the lists truncated?")
        entry["splits"][split] = write_jsonl(out_dir / DATASET / f"{split}.jsonl", splits[split])
    inputs = [files.english, files.translations[APT_NAME], files.packages]
    release = release_info(files.release)
    manifest = {
        "datasets": {DATASET: entry},
        "sources": {p.name: {"sha256": file_sha256(p)} for p in inputs},
        "release": release,
        "date": release.get("Date"),
        "languages": [LANGUAGE],
        "split_rule": "as model_export.data: int(sha256(package)[:8], 16) % 100",
    }
    write_manifest(out_dir, manifest)
    print(f"{DATASET}: " + ", ".join(f"{s} {len(splits[s])}" for s in SPLITS))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/marian"))
    parser.add_argument("--lists-dir", type=Path, help="apt lists already fetched")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.lists_dir)
    except DataError as exc:
        print(f"marian_data: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
