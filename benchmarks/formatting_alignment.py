"""How often inline formatting lands on the right translated words, by alignment method.

    python -m benchmarks.formatting_alignment extract   # once: real sentences -> items.jsonl
    python -m benchmarks.formatting_alignment annotate  # print items to write gold.jsonl by hand
    python -m benchmarks.formatting_alignment score --out docs/results/formatting_alignment.json

The test set (tests/fixtures/formatting/) is made of real sentences with real inline
formatting: `extract` reads the Markdown files Debian installs under /usr/share/doc and
the Markdown descriptions of the Python packages in the active environment, keeps the
sentences (split as the file path splits them) that hold exactly one bold, italic or link
span of 1-6 words (inline code is left out: it is placed by exact match, not alignment),
and samples 100 of them, at most 4 per file. The default en->fr model translates each one
(greedy, the committed bundle); `gold.jsonl` says, by reading the French, which translated
words carry the span's meaning (the word indexes of `restyle.WORD` tokens), or that the
model dropped it. `score` translates again, checks the translations still match the gold's,
and scores each method by exact match of the formatted word set and word-level precision,
recall and F1.

Methods: the attention's argmax source word per translated word (`keep="best"`), the
attention mass per style (`keep="all"`), proportional position (the span's relative place
in the source mapped onto the translation), and no alignment (the whole sentence in its
main style: the formatting is lost).
"""

from __future__ import annotations

import argparse
import email
import glob
import json
import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import environment, print_table, write_json
from service.engine.offline import Seq2SeqEngine
from service.formats.align import attention_links
from service.formats.limits import FileLimits
from service.formats.markdown import open_markdown
from service.formats.restyle import WORD, StyleSpan, Translation, WordLink, main_style, restyle
from service.formats.units import Unit
from service.text.plain import split_text

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "tests/fixtures/formatting"
ITEMS, GOLD = FOLDER / "items.jsonl", FOLDER / "gold.jsonl"
BUNDLE = ROOT / "models/translate-en-fr/1"


def _markdown_sources() -> list[tuple[str, bytes]]:
    found = [(path, Path(path).read_bytes()) for path in sorted(glob.glob("/usr/share/doc/*/*.md"))]
    for path in sorted(glob.glob(f"{sys.prefix}/lib/python3*/site-packages/*.dist-info/METADATA")):
        message = email.message_from_bytes(Path(path).read_bytes())
        if "markdown" in (message.get("Description-Content-Type") or ""):
            body = message.get_payload()
            if isinstance(body, str):
                found.append((path[path.index("site-packages") :], body.encode()))
    return found


def _candidates(path: str, data: bytes) -> list[dict[str, Any]]:
    try:
        document = open_markdown(data, FileLimits())
    except Exception:  # a file we cannot read is simply not used
        return []
    items = []
    for unit in document.units:
        if len(unit.runs) < 2 or unit.verbatim:
            continue
        position = 0
        for piece in split_text(unit.text, "en", lambda _: True).pieces:
            start, end = position, position + len(piece.text)
            position = end
            if piece.translate:
                item = _item(unit, start, end, path)
                if item is not None:
                    items.append(item)
    return items


def _item(unit: Unit, start: int, end: int, path: str) -> dict[str, Any] | None:
    sentence = unit.text[start:end]
    spans, position = [], 0
    for run in unit.runs:
        low, high = max(start, position), min(end, position + len(run.text))
        if low < high:
            spans.append(StyleSpan(low - start, high - start, run.style))
        position += len(run.text)
    main = main_style(spans)
    others = [s for s in spans if s.style != main]
    if len(others) != 1 or len({s.style for s in spans}) != 2:
        return None
    span = others[0]
    marked = sentence[span.start : span.end].strip()
    words = sentence.split()
    if not (6 <= len(words) <= 35 and 1 <= len(marked.split()) <= 6):
        return None
    if not re.match(r"^[A-Z].*[.!?:]$", sentence) or re.search(r"[<@]|http|\|", sentence):
        return None
    if len(marked) > 0.6 * len(sentence) or not re.search(r"[A-Za-z]{2}", marked):
        return None
    lead = span.start + (
        len(sentence[span.start : span.end]) - len(sentence[span.start : span.end].lstrip())
    )
    return {"source": sentence, "span": [lead, lead + len(marked)], "file": path}


def extract(count: int = 100, per_file: int = 4) -> None:
    seen: set[str] = set()
    pool: list[dict[str, Any]] = []
    for path, data in _markdown_sources():
        kept = 0
        for item in _candidates(path, data):
            if item["source"] not in seen and kept < per_file:
                seen.add(item["source"])
                pool.append(item)
                kept += 1
    random.Random(26).shuffle(pool)
    chosen = sorted(pool[:count], key=lambda i: (i["file"], i["source"]))
    FOLDER.mkdir(parents=True, exist_ok=True)
    with ITEMS.open("w", encoding="utf-8") as out:
        for number, item in enumerate(chosen):
            out.write(json.dumps({"id": number, **item}, ensure_ascii=False) + "\n")
    print(
        f"{len(chosen)} items from {len({i['file'] for i in chosen})} files "
        f"({len(pool)} candidates)"
    )


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _translate(engine: Seq2SeqEngine, items: Sequence[dict[str, Any]]) -> list[Any]:
    results = engine.generate_batch([i["source"] for i in items], return_attention=True)
    return [r.best for r in results]


def annotate() -> None:
    """Print each item with its translation's words numbered, to write gold.jsonl by hand."""
    items = _load(ITEMS)
    engine = Seq2SeqEngine(BUNDLE, intra_op_threads=1)
    for item, best in zip(items, _translate(engine, items), strict=True):
        a, b = item["span"]
        marked = item["source"][:a] + "[" + item["source"][a:b] + "]" + item["source"][b:]
        words = [m.group() for m in WORD.finditer(best.text)]
        print(
            f"{item['id']}\t{marked}\n\t{best.text}\n\t"
            + " ".join(f"{i}:{w}" for i, w in enumerate(words))
        )


def _spans(item: dict[str, Any]) -> list[StyleSpan]:
    a, b = item["span"]
    return [StyleSpan(0, a, 0), StyleSpan(a, b, 1), StyleSpan(b, len(item["source"]), 0)]


def _formatted_words(text: str, runs: Sequence[Any]) -> set[int]:
    styles: list[int] = []
    for run in runs:
        styles.extend([run.style] * len(run.text))
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    return {i for i, (s, e) in enumerate(words) if sum(styles[s:e]) * 2 > (e - s)}


def _inline_tags(
    engine: Seq2SeqEngine, items: Sequence[dict[str, Any]], best: Sequence[Any]
) -> dict[str, int]:
    """The other design: the span wrapped in <b>...</b> and sent to the model as text."""
    fits = [
        (i, h)
        for i, h in zip(items, best, strict=True)
        if engine.tokenizer.count(_tagged(i)) <= engine.manifest.max_source_length
    ]
    results = engine.generate_batch([_tagged(i) for i, _ in fits])
    intact = same = 0
    for (_, plain), result in zip(fits, results, strict=True):
        text = result.best.text
        opened, closed = text.find("<b>"), text.find("</b>")
        intact += text.count("<b>") == 1 and text.count("</b>") == 1 and 0 <= opened < closed
        same += " ".join(text.replace("<b>", " ").replace("</b>", " ").split()) == plain.text
    return {"sent": len(fits), "intact": intact, "same_text": same}


def _tagged(item: dict[str, Any]) -> str:
    a, b = item["span"]
    return item["source"][:a] + "<b>" + item["source"][a:b] + "</b>" + item["source"][b:]


def _only_short_edge_words(text: str, chosen: set[int], gold: set[int]) -> bool:
    """The prediction differs from the gold only by words of at most 3 letters next to the
    gold span ("la", "de", "les" or a full stop taken along)."""
    words = [m.group() for m in WORD.finditer(text)]
    if not gold or not chosen & gold:
        return False
    low, high = min(gold), max(gold)
    extra, missing = chosen - gold, gold - chosen
    near = all(low - 2 <= i <= high + 2 and len(words[i]) <= 3 for i in extra | missing)
    return near


def _proportional(item: dict[str, Any], text: str) -> tuple[WordLink, ...]:
    """Each translated word linked to the source characters at the same relative place."""
    scale = len(item["source"]) / max(len(text), 1)
    return tuple(
        WordLink(
            m.start(),
            m.end(),
            ((int(m.start() * scale), max(int(m.end() * scale), int(m.start() * scale) + 1), 1.0),),
        )
        for m in WORD.finditer(text)
    )


def score(out: Path | None) -> dict[str, Any]:
    items, gold = _load(ITEMS), {g["id"]: g for g in _load(GOLD)}
    engine = Seq2SeqEngine(BUNDLE, intra_op_threads=1)
    best = _translate(engine, items)
    methods: dict[str, Callable[[dict[str, Any], Any], tuple[WordLink, ...]]] = {
        "attention argmax": lambda i, h: attention_links(
            i["source"], h.text, h.token_ids, h.attention, engine.tokenizer, keep="best"
        ),
        "attention mass": lambda i, h: attention_links(
            i["source"], h.text, h.token_ids, h.attention, engine.tokenizer, keep="all"
        ),
        "proportional position": lambda i, h: _proportional(i, h.text),
        "no alignment": lambda i, h: (),
    }
    stale = [
        i["id"] for i, h in zip(items, best, strict=True) if gold[i["id"]]["translation"] != h.text
    ]
    if stale:
        raise SystemExit(f"the model's translations changed for items {stale}: annotate again")
    scored = [(i, h, set(gold[i["id"]]["words"])) for i, h in zip(items, best, strict=True)]
    kept = [(i, h, g) for i, h, g in scored if g]  # the model dropped the span in the others
    rows, report = [], {}
    for name, method in methods.items():
        exact = hits = predicted = expected = lost = edge = 0
        for item, hypothesis, words in kept:
            runs = restyle(_spans(item), Translation(hypothesis.text, method(item, hypothesis)))
            chosen = _formatted_words(hypothesis.text, runs)
            exact += chosen == words
            edge += chosen != words and _only_short_edge_words(hypothesis.text, chosen, words)
            hits += len(chosen & words)
            predicted += len(chosen)
            expected += len(words)
            lost += not chosen
        precision, recall = hits / max(predicted, 1), hits / max(expected, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        report[name] = {
            "exact": round(exact / len(kept), 3),
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "f1": round(f1, 3),
            "formatting_lost": round(lost / len(kept), 3),
            "off_by_short_edge_words": round(edge / len(kept), 3),
        }
        rows.append([name, *report[name].values()])
    print(
        f"{len(items)} items, {len(kept)} with the span translated "
        f"({len(items) - len(kept)} dropped or garbled by the model)"
    )
    print_table(["method", "exact", "precision", "recall", "F1", "lost", "edge only"], rows)
    tags = _inline_tags(engine, items, best)
    print(
        f"inline tags instead: {tags['intact']} of {tags['sent']} came back with one well-formed "
        f"<b>...</b> pair; {tags['same_text']} translated the words as without tags"
    )
    result = {
        "environment": environment(),
        "inline_tags": tags,
        "bundle": str(BUNDLE.relative_to(ROOT)),
        "items": len(items),
        "scored": len(kept),
        "files": len({i["file"] for i in items}),
        "methods": report,
    }
    if out is not None:
        write_json(out, result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("extract", "annotate", "score"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "extract":
        extract()
    elif args.command == "annotate":
        annotate()
    else:
        score(args.out)


if __name__ == "__main__":
    main()
