"""The format layer's own cost: a 50-page Word document and a 300-cue subtitle file.

    python -m benchmarks.file_formats --out docs/results/file_formats.json [--model]

Each case runs in a fresh process (so its peak RSS is its own): read and plan the file
(`open_file` + `plan_units`: parsing, units, sentence splitting), then assemble and write
it back (`FilePlan.assemble` + `OpenedFile.write`) with a stand-in translation that
reverses each sentence's words and links them (so the styled sentences go through
`restyle`). The files are made here from the held-out English paragraphs of
tests/fixtures/segmentation (80 real package descriptions, cycled): the document has a
heading every 10 paragraphs, a bold and an italic word in every other paragraph, and a
5x3 table every 50 paragraphs, about 500 words a page; the subtitles are 300 cues of one
or two lines. The hostile files (a ZIP bomb declaring 1 GiB, an XML entity bomb) are
refused in fresh processes too, to show memory stays flat.

With `--model`, the same sentences are also translated by the offline engine (the default
en->fr model, one thread), to put the format layer's time beside the model's. Sentences
per second through the server, beside the same text sent as plain text, come with the
server's file operation.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from benchmarks.report import environment, print_table, write_json

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPHS = ROOT / "tests/fixtures/segmentation/gold.jsonl"
BUNDLE = ROOT / "models/translate-en-fr/1"
PAGES, WORDS_PER_PAGE, CUES = 50, 500, 300


def _english() -> list[str]:
    rows = [json.loads(line) for line in PARAGRAPHS.read_text(encoding="utf-8").splitlines()]
    return [row["text"] for row in rows if row["lang"] == "en"]


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Package descriptions"
    paragraphs, words, index = _english(), 0, 0
    while words < PAGES * WORDS_PER_PAGE:
        text = paragraphs[index % len(paragraphs)]
        if index % 10 == 0:
            document.add_heading(f"Section {index // 10 + 1}: {text.split('.')[0][:60]}", 1)
        paragraph = document.add_paragraph()
        tokens = text.split(" ")
        for position, token in enumerate(tokens):
            run = paragraph.add_run(token + (" " if position < len(tokens) - 1 else ""))
            if index % 2 == 0 and position == 3:
                run.bold = True
            if index % 2 == 0 and position == 9:
                run.italic = True
        if index % 50 == 49:
            table = document.add_table(rows=5, cols=3)
            for row in range(5):
                for column in range(3):
                    table.cell(row, column).text = paragraphs[(index + row + column) % 80][:60]
        words += len(tokens)
        index += 1
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_srt() -> bytes:
    sentences = [s for p in _english() for s in re.split(r"(?<=\.) ", p) if len(s) < 90]
    cues = []
    for number in range(CUES):
        text = sentences[number % len(sentences)]
        words = text.split()
        half = len(words) // 2
        lines = [text] if len(text) <= 42 else [" ".join(words[:half]), " ".join(words[half:])]
        start = number * 3.0
        cues.append(f"{number + 1}\n{_time(start)} --> {_time(start + 2.5)}\n" + "\n".join(lines))
    return ("\n\n".join(cues) + "\n").encode()


def _time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, minutes, secs = millis // 3_600_000, millis // 60_000 % 60, millis // 1000 % 60
    return f"{hours:02}:{minutes:02}:{secs:02},{millis % 1000:03}"


def make_zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
        archive.writestr("[Content_Types].xml", f'<Types><Override ContentType="{main}"/></Types>')
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(1024):
                member.write(block)
    return out.getvalue()


def make_entity_bomb(source: bytes) -> bytes:
    laughs = b'<!ENTITY l0 "lol">' + b"".join(
        b'<!ENTITY l%d "%s">' % (n, b"&l%d;" % (n - 1) * 10) for n in range(1, 10)
    )
    document = (
        b'<?xml version="1.0"?><!DOCTYPE d [' + laughs + b"]><w:document xmlns:w="
        b'"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
        b"<w:t>&l9;</w:t></w:r></w:p></w:body></w:document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as original, zipfile.ZipFile(out, "w") as archive:
        for info in original.infolist():
            data = document if info.filename == "word/document.xml" else original.read(info)
            archive.writestr(info, data)
    return out.getvalue()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(case: str, path: Path, model: bool) -> dict[str, Any]:
    """One case in this process: timings and peak RSS (MiB)."""
    from service.errors import InvalidArgument
    from service.formats.plan import plan_units
    from service.formats.registry import open_file
    from service.formats.restyle import Translation, WordLink

    engine = None
    if model:
        from service.engine.offline import Seq2SeqEngine

        engine = Seq2SeqEngine(BUNDLE, intra_op_threads=1)

    def fits(text: str) -> bool:  # the model's source limit, or a stand-in without it
        if engine is None:
            return len(text.split()) <= 60
        return engine.tokenizer.count(text) <= engine.manifest.max_source_length

    data = path.read_bytes()
    baseline = _peak_mib()
    name = {"docx": "book.docx", "srt": "film.srt"}.get(case, "bomb.docx")
    started = time.perf_counter()
    try:
        opened = open_file(name, data)
    except InvalidArgument as error:
        return {
            "refused": error.message,
            "seconds": time.perf_counter() - started,
            "baseline_mib": baseline,
            "peak_mib": _peak_mib(),
        }
    plan = plan_units(opened.units, "en", fits)
    extracted = time.perf_counter() - started

    def reverse(sentence: str) -> Translation:
        spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", sentence)][::-1]
        text, links, position = [], [], 0
        for start, end in spans:
            links.append(WordLink(position, position + end - start, ((start, end, 1.0),)))
            text.append(sentence[start:end])
            position += end - start + 1
        return Translation(" ".join(text), tuple(links))

    translations = [reverse(s.text) for s in plan.sentences]
    after_extract = _peak_mib()
    started = time.perf_counter()
    out = opened.write(plan.assemble(translations))
    rebuilt = time.perf_counter() - started
    result = {
        "file_bytes": len(data),
        "units": len(opened.units),
        "sentences": len(plan.sentences),
        "styled_sentences": sum(s.styled for s in plan.sentences),
        "extract_seconds": round(extracted, 3),
        "reassemble_seconds": round(rebuilt, 3),
        "format_layer_sentences_per_second": round(len(plan.sentences) / (extracted + rebuilt), 1),
        "output_bytes": len(out.data),
        "baseline_mib": round(baseline, 1),
        "peak_after_extract_mib": round(after_extract, 1),
        "peak_mib": round(_peak_mib(), 1),
    }
    if engine is not None:
        started = time.perf_counter()
        engine.generate_batch([s.text for s in plan.sentences])
        seconds = time.perf_counter() - started
        result["model_seconds"] = round(seconds, 2)
        result["model_sentences_per_second"] = round(len(plan.sentences) / seconds, 1)
        result["format_layer_share"] = round(
            (extracted + rebuilt) / (extracted + rebuilt + seconds), 3
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model", action="store_true", help="also time the offline model")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.file, args.model)))
        return
    folder = ROOT / "runs" / "file_formats"
    folder.mkdir(parents=True, exist_ok=True)
    docx_bytes = make_docx()
    files = {
        "docx": docx_bytes,
        "srt": make_srt(),
        "zip bomb": make_zip_bomb(),
        "entity bomb": make_entity_bomb(docx_bytes),
    }
    results: dict[str, Any] = {}
    for case, data in files.items():
        path = folder / case.replace(" ", "_")
        path.write_bytes(data)
        command = [
            sys.executable,
            "-m",
            "benchmarks.file_formats",
            "--child",
            case,
            "--file",
            str(path),
        ]
        if args.model and case in ("docx", "srt"):
            command.append("--model")
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for case in ("docx", "srt"):
        r = results[case]
        rows.append(
            [
                case,
                r["file_bytes"],
                r["units"],
                r["sentences"],
                r["extract_seconds"],
                r["reassemble_seconds"],
                r["format_layer_sentences_per_second"],
                r["baseline_mib"],
                r["peak_mib"],
                r.get("model_sentences_per_second", "-"),
            ]
        )
    print_table(
        [
            "file",
            "bytes",
            "units",
            "sentences",
            "extract s",
            "reassemble s",
            "sentences/s",
            "RSS before MiB",
            "peak RSS MiB",
            "model sentences/s",
        ],
        rows,
    )
    for case in ("zip bomb", "entity bomb"):
        r = results[case]
        print(
            f"{case}: {len(files[case])} bytes refused in {r['seconds']:.3f} s, peak RSS "
            f"{r['peak_mib']:.1f} MiB (before {r['baseline_mib']:.1f}): {r['refused']}"
        )
    if args.out:
        write_json(args.out, {"environment": environment(), "pages": PAGES, "results": results})


if __name__ == "__main__":
    main()
