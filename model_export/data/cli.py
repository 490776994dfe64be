"""`python -m model_export.data prepare ...`: the reproducible data command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_export.data.errors import DataError
from model_export.data.newer import NEWER_SUITE, prepare_newer
from model_export.data.prepare import prepare
from model_export.data.store import LANGUAGES, dataset_sha256


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run prepare, print counts; exit 2 with the message on DataError."""
    parser = argparse.ArgumentParser(prog="python -m model_export.data")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build translate/summarize/answer datasets from apt lists")
    p.add_argument("--out", type=Path, default=Path("data/prepared"), help="output folder")
    p.add_argument(
        "--lists-dir", type=Path, default=None,
        help="read apt lists from here (offline); default: fetch with apt-get into "
        "<out>/../debian-lists",
    )  # fmt: skip
    p.add_argument("--languages", default=",".join(LANGUAGES), help="comma list out of fr,de,it")
    n = sub.add_parser("newer", help="held-out answer/summarize records from a newer suite")
    n.add_argument("--out", type=Path, default=Path("data/newer"), help="output folder")
    n.add_argument("--suite", default=NEWER_SUITE, help="the newer Debian suite")
    n.add_argument(
        "--base-lists", type=Path, default=Path("data/debian-lists"),
        help="the training suite's lists: packages named there are left out",
    )  # fmt: skip
    n.add_argument(
        "--lists-dir", type=Path, default=None,
        help="read the newer suite's lists from here; default: fetch with apt-get into "
        "<out>/../debian-lists-<suite>",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.command == "newer":
            prepare_newer(args.out, args.base_lists, args.lists_dir, suite=args.suite)
        else:
            languages = tuple(x.strip() for x in args.languages.split(",") if x.strip())
            prepare(args.out, args.lists_dir, languages)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (dataset sha256 {dataset_sha256(args.out)})")
    return 0
