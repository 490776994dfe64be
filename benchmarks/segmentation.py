"""Sentence segmenters compared on held-out Debian descriptions in en, fr, de and it.

    python -m benchmarks.segmentation --out docs/results/segmentation.json

The gold file (tests/fixtures/segmentation/gold.jsonl, how it was made: its README) holds 320
test-split paragraphs with their sentence starts. A segmenter's proposed starts are scored by
precision, recall and F1 per language; speed is paragraphs per second over the whole set.
Every candidate ships what it needs inside its package (nothing is downloaded at run time);
a candidate that is not installed is reported as missing (`pip install -e '.[bench-text]'`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.report import environment, print_table, write_json

GOLD = Path(__file__).resolve().parent.parent / "tests/fixtures/segmentation/gold.jsonl"
LANGUAGES = ("en", "fr", "de", "it")

Splitter = Callable[[str], list[int]]  # paragraph -> start offsets of its 2nd, 3rd... sentences


def starts_of(text: str, pieces: list[str]) -> list[int]:
    """Offsets where the 2nd, 3rd... pieces begin, found in order in `text`."""
    found, pos, first = [], 0, True
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        at = text.find(piece[:20], pos)
        if at < 0:
            raise ValueError(f"segment {piece[:40]!r} is not in the text")
        if not first:
            found.append(at)
        first, pos = False, at + len(piece)
    return sorted(set(found))


def _candidates(language: str) -> dict[str, Splitter | str]:
    """name -> splitter, or a string saying why it is missing."""
    out: dict[str, Splitter | str] = {}
    try:
        import pysbd

        segmenter = pysbd.Segmenter(language=language, clean=False)
        out["pysbd"] = lambda t: starts_of(t, segmenter.segment(t))
    except ImportError as error:
        out["pysbd"] = str(error)
    try:
        import blingfire

        out["blingfire"] = lambda t: starts_of(t, blingfire.text_to_sentences(t).split("\n"))
    except ImportError as error:
        out["blingfire"] = str(error)
    try:
        import sentencex

        out["sentencex"] = lambda t: starts_of(t, list(sentencex.segment(language, t)))
    except ImportError as error:
        out["sentencex"] = str(error)
    try:
        from sentence_splitter import SentenceSplitter

        moses = SentenceSplitter(language=language)
        out["sentence-splitter"] = lambda t: starts_of(t, moses.split(t))
    except ImportError as error:
        out["sentence-splitter"] = str(error)
    try:
        import syntok.segmenter as syntok

        out["syntok"] = lambda t: sorted(
            {s[0].offset for p in syntok.analyze(t) for s in p if s and s[0].offset > 0}
        )
    except ImportError as error:
        out["syntok"] = str(error)
    try:
        from service.text.segment import SentenceSegmenter

        ours = SentenceSegmenter(language)
        out["service.text.segment (pysbd)"] = lambda t: [
            s.start for s in ours.sentences(t) if s.start > 0
        ]
    except ImportError as error:
        out["service.text.segment (pysbd)"] = str(error)
    return out


def score(gold: list[dict[str, Any]], splitter: Splitter) -> dict[str, float | int]:
    tp = fp = fn = 0
    for row in gold:
        expected = set(row["starts"])
        proposed = set(splitter(row["text"]))
        tp += len(expected & proposed)
        fp += len(proposed - expected)
        fn += len(expected - proposed)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "false_splits": fp,
        "missed": fn,
    }


def run(gold_path: Path = GOLD, rounds: int = 3) -> dict[str, Any]:
    gold = [json.loads(line) for line in gold_path.read_text().splitlines() if line.strip()]
    results: dict[str, dict[str, Any]] = {}
    for language in LANGUAGES:
        rows = [r for r in gold if r["lang"] == language]
        for name, splitter in _candidates(language).items():
            entry = results.setdefault(name, {"languages": {}, "seconds": 0.0})
            if isinstance(splitter, str):
                entry["missing"] = splitter
                continue
            entry["languages"][language] = score(rows, splitter)
            best = min(_timed(splitter, rows) for _ in range(rounds))
            entry["seconds"] += best
    for entry in results.values():
        if entry["languages"]:
            entry["paragraphs_per_second"] = round(len(gold) / entry.pop("seconds"), 1)
            scores = list(entry["languages"].values())
            entry["f1_mean"] = round(sum(s["f1"] for s in scores) / len(scores), 4)
    return {
        "gold": {"file": str(gold_path.name), "paragraphs": len(gold)},
        "boundaries": sum(len(r["starts"]) for r in gold),
        "segmenters": results,
        "environment": environment(),
    }


def _timed(splitter: Splitter, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for row in rows:
        splitter(row["text"])
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--out", type=Path, default=Path("docs/results/segmentation.json"))
    args = parser.parse_args(argv)
    report = run(args.gold)
    header = ["segmenter", *[f"F1 {lang}" for lang in LANGUAGES], "false splits", "missed"]
    header.append("paragraphs/s")
    rows = []
    for name, entry in report["segmenters"].items():
        if "missing" in entry:
            rows.append([name, *["-"] * len(LANGUAGES), "-", "-", "missing"])
            continue
        langs = entry["languages"]
        rows.append(
            [
                name,
                *[f"{langs[lang]['f1']:.3f}" for lang in LANGUAGES],
                sum(s["false_splits"] for s in langs.values()),
                sum(s["missed"] for s in langs.values()),
                entry["paragraphs_per_second"],
            ]
        )
    print_table(header, rows)
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
