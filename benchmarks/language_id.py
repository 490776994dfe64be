"""Language detectors compared on held-out Debian descriptions in en, fr, de and it.

    python -m model_export.data prepare --out data/prepared      # once
    python -m benchmarks.language_id --data data/prepared --out docs/results/language_id.json

Texts come from the test splits only: English sources and French, German and Italian human
translations of `translate-en-*` (short descriptions and long-description paragraphs). They
are bucketed by length in characters and sampled (seeded) up to `--per-bucket` per language
and bucket. Each detector answers over ALL the languages it knows (a Spanish text must come
back as Spanish, so that `source_language: auto` can name it), and accuracy is the share of
texts whose top answer is the true language. Every candidate ships its model inside its
package; one that is not installed is reported as missing (`pip install -e '.[bench-text]'`).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.report import environment, print_table, write_json

LANGUAGES = ("en", "fr", "de", "it")
BUCKETS = ((1, 19), (20, 49), (50, 99), (100, 199), (200, 10_000))

Detector = Callable[[str], str]  # text -> ISO 639-1 code ("" when it gives no answer)


def heldout_texts(data: Path, per_bucket: int, seed: int = 7) -> list[tuple[str, str]]:
    """(language, text) pairs from the test splits, at most `per_bucket` per language and bucket."""
    by_language: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
    for target in LANGUAGES[1:]:
        for line in (data / f"translate-en-{target}" / "test.jsonl").read_text().splitlines():
            row = json.loads(line)
            by_language["en"].add(row["source"])
            by_language[target].add(row["target"])
    rng = random.Random(seed)
    picked = []
    for language, texts in by_language.items():
        for low, high in BUCKETS:
            pool = sorted(t for t in texts if low <= len(t) <= high)
            rng.shuffle(pool)
            picked += [(language, t) for t in pool[:per_bucket]]
    return picked


def _candidates() -> dict[str, Detector | str]:
    """name -> detector, or a string saying why it is missing."""
    out: dict[str, Detector | str] = {}
    try:
        from service.text.detect import LanguageDetector

        ours = LanguageDetector(LANGUAGES)
        out["py3langid (en,fr,de,it) = service.text.detect"] = lambda t: ours.detect(t).language
    except ImportError as error:
        out["py3langid (en,fr,de,it) = service.text.detect"] = str(error)
    try:
        import langid
        from langid.langid import LanguageIdentifier, model

        langid_four = LanguageIdentifier.from_modelstring(model)
        langid_four.set_languages(list(LANGUAGES))
        out["langid (en,fr,de,it)"] = lambda t: langid_four.classify(t)[0]
    except ImportError as error:
        out["langid (en,fr,de,it)"] = str(error)
    try:
        from lingua import Language, LanguageDetectorBuilder

        lingua_four = LanguageDetectorBuilder.from_languages(
            Language.ENGLISH, Language.FRENCH, Language.GERMAN, Language.ITALIAN
        ).build()

        def _lingua_four(text: str) -> str:
            found = lingua_four.detect_language_of(text)
            return "" if found is None else found.iso_code_639_1.name.lower()

        out["lingua (en,fr,de,it)"] = _lingua_four
    except ImportError as error:
        out["lingua (en,fr,de,it)"] = str(error)
    try:
        import langdetect as _ld

        def _langdetect_four(text: str) -> str:
            try:
                ranked = _ld.detect_langs(text)
            except _ld.LangDetectException:
                return ""
            return next((r.lang for r in ranked if r.lang in LANGUAGES), "")

        out["langdetect (en,fr,de,it of its ranking)"] = _langdetect_four
    except ImportError as error:
        out["langdetect (en,fr,de,it of its ranking)"] = str(error)
    try:
        import py3langid

        out["py3langid"] = lambda t: py3langid.classify(t)[0]
    except ImportError as error:
        out["py3langid"] = str(error)
    try:
        import langid

        out["langid"] = lambda t: langid.classify(t)[0]
    except ImportError as error:
        out["langid"] = str(error)
    try:
        import langdetect

        factory = langdetect.DetectorFactory
        factory.seed = 0

        def _langdetect(text: str) -> str:
            try:
                return langdetect.detect(text)
            except langdetect.LangDetectException:
                return ""

        out["langdetect"] = _langdetect
    except ImportError as error:
        out["langdetect"] = str(error)
    try:
        import pycld2

        def _cld2(text: str) -> str:
            try:
                code = pycld2.detect(text)[2][0][1]
            except pycld2.error:
                return ""
            return "" if code == "un" else code

        out["pycld2"] = _cld2
    except ImportError as error:
        out["pycld2"] = str(error)
    try:
        from lingua import LanguageDetectorBuilder

        lingua = LanguageDetectorBuilder.from_all_languages().build()

        def _lingua(text: str) -> str:
            found = lingua.detect_language_of(text)
            return "" if found is None else found.iso_code_639_1.name.lower()

        out["lingua (all languages, high accuracy)"] = _lingua
    except ImportError as error:
        out["lingua (all languages, high accuracy)"] = str(error)
    return out


def evaluate(texts: list[tuple[str, str]], detect: Detector) -> dict[str, Any]:
    hits: dict[str, list[int]] = {}
    started = time.perf_counter()
    answers = [detect(text) for _, text in texts]
    seconds = time.perf_counter() - started
    for (language, text), answer in zip(texts, answers, strict=True):
        for key in (_bucket_name(len(text)), f"{language} {_bucket_name(len(text))}"):
            hit = hits.setdefault(key, [0, 0])
            hit[0] += answer == language
            hit[1] += 1
        if len(text) >= 20:
            for key in ("all >= 20 chars", f"{language} >= 20 chars"):
                hit = hits.setdefault(key, [0, 0])
                hit[0] += answer == language
                hit[1] += 1
    accuracy = {key: round(ok / n, 4) for key, (ok, n) in sorted(hits.items())}
    counts = {key: n for key, (_, n) in sorted(hits.items())}
    return {"accuracy": accuracy, "texts": counts, "texts_per_second": round(len(texts) / seconds)}


def _bucket_name(length: int) -> str:
    for low, high in BUCKETS:
        if low <= length <= high:
            return f"{low}-{high} chars" if high < 10_000 else f">= {low} chars"
    return "empty"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--per-bucket", type=int, default=250)
    parser.add_argument("--out", type=Path, default=Path("docs/results/language_id.json"))
    args = parser.parse_args(argv)
    texts = heldout_texts(args.data, args.per_bucket)
    detectors: dict[str, Any] = {}
    for name, detect in _candidates().items():
        if isinstance(detect, str):
            detectors[name] = {"missing": detect}
            continue
        detectors[name] = evaluate(texts, detect)
        print(f"{name}: done", flush=True)
    write_json(
        args.out,
        {
            "data": str(args.data),
            "texts": len(texts),
            "per_bucket": args.per_bucket,
            "detectors": detectors,
            "environment": environment(),
        },
    )
    columns = [_bucket_name(high) for _, high in BUCKETS]
    header = ["detector", *columns, ">= 20 all", *[f">= 20 {lang}" for lang in LANGUAGES]]
    rows = []
    for name, entry in detectors.items():
        if "missing" in entry:
            rows.append([name, "missing", *[""] * (len(header) - 2)])
            continue
        acc = entry["accuracy"]
        rows.append(
            [
                name,
                *[f"{acc[c]:.3f}" for c in columns],
                f"{acc['all >= 20 chars']:.3f}",
                *[f"{acc[f'{lang} >= 20 chars']:.3f}" for lang in LANGUAGES],
            ]
        )
    print_table(header, rows)
    print_table(
        ["detector", "texts/s"],
        [[n, e.get("texts_per_second", "-")] for n, e in detectors.items()],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
