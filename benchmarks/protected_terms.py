"""Protected terms on held-out translations: how often technical terms (URLs, paths, file
and package names, versioned identifiers) reach the output verbatim, with and without
`protected_terms`, and what protecting them does to BLEU / chrF.

    python -m benchmarks.protected_terms OUT.json [--data data/prepared] [--limit 400]

Without --data it uses the held-out fixtures under tests/fixtures/heldout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from benchmarks.report import environment, print_table, write_json
from service.engine.offline import Seq2SeqEngine
from service.errors import InvalidArgument
from service.settings import DEFAULT_MODEL_REPOSITORY

HELDOUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "heldout"
PAIRS = ("translate-en-fr", "translate-en-de", "translate-en-it")
_TERM = re.compile(
    r"[a-z][a-z0-9+.-]*://\S+"  # URLs with a scheme
    r"|/[\w.+-]+(?:/[\w.+-]+)+"  # absolute paths
    r"|\b[\w-]+\.(?:org|com|net|io|html|txt|conf|py|so|deb|xml|json|gz)\b"  # domains, files
    r"|\b[A-Za-z][\w+-]*\d[\w+.-]*"  # identifiers with digits: libasound2, XEP-0045
)


def technical_terms(text: str) -> list[str]:
    """Non-overlapping terms a translation must keep as they are, trailing punctuation cut."""
    found: list[str] = []
    for match in _TERM.finditer(text):
        term = match.group().rstrip(".,;:)'\"")
        if len(term) >= 3 and term not in found:
            found.append(term)
    return found


def records(data: Path | None, pair: str, limit: int) -> list[dict[str, str]]:
    path = data / pair / "test.jsonl" if data else HELDOUT / f"{pair}.jsonl"
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    return [r for r in rows if technical_terms(r["source"])][:limit]


def _fits(engine: Seq2SeqEngine, text: str) -> bool:
    try:
        engine.encode(text)
    except InvalidArgument:
        return False  # over the model's source limit: the server refuses it too
    return True


def measure(models: Path, pair: str, rows: list[dict[str, str]]) -> dict[str, object]:
    import sacrebleu  # the export extra: benchmarks score like model_export does

    engine = Seq2SeqEngine(models / pair / "1", intra_op_threads=2)
    rows = [r for r in rows if _fits(engine, r["source"])]
    plain, kept, terms_total, kept_plain, kept_protected = [], [], 0, 0, 0
    started = time.perf_counter()
    for row in rows:
        terms = technical_terms(row["source"])
        (free,) = engine.generate_batch([row["source"]])
        (guarded,) = engine.generate_batch([row["source"]], protected_terms=tuple(terms))
        plain.append(free.best.text)
        kept.append(guarded.best.text)
        terms_total += len(terms)
        kept_plain += sum(t in free.best.text for t in terms)
        kept_protected += sum(t in guarded.best.text for t in terms)
    references = [[r["target"] for r in rows]]
    return {
        "pair": pair,
        "sentences": len(rows),
        "terms": terms_total,
        "kept_without": round(100 * kept_plain / max(terms_total, 1), 2),
        "kept_with": round(100 * kept_protected / max(terms_total, 1), 2),
        "bleu_without": round(sacrebleu.corpus_bleu(plain, references).score, 2),
        "bleu_with": round(sacrebleu.corpus_bleu(kept, references).score, 2),
        "chrf_without": round(sacrebleu.corpus_chrf(plain, references).score, 2),
        "chrf_with": round(sacrebleu.corpus_chrf(kept, references).score, 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--data", type=Path, help="prepared datasets (test splits)")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--limit", type=int, default=400, help="sentences per pair")
    args = parser.parse_args(argv)
    results = [measure(args.models, p, records(args.data, p, args.limit)) for p in PAIRS]
    header = list(results[0])
    print_table(header, [[r[k] for k in header] for r in results])
    write_json(args.out, {"environment": environment(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
