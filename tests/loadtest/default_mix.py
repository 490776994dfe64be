"""Builds seq2seq_client/loadtest/mixes/default.jsonl from the held-out fixtures (test split, never
seen in training) of the five default models, leaving out inputs over a model's source limit.

    python -m tests.loadtest.default_mix      # rewrite the bundled mix
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seq2seq_client.loadtest.mix import default_mix_path
from service.bundle import answer_source_text, read_manifest
from service.engine.tokenizer import open_tokenizer
from service.errors import InvalidArgument
from tests.conftest import default_bundle, heldout

# rpc, held-out dataset, model folder, fields of a record -> mix fields
SOURCES = (
    ("Translate", "translate-en-fr", "translate-en-fr"),
    ("Translate", "translate-en-de", "translate-en-de"),
    ("Translate", "translate-en-it", "translate-en-it"),
    ("Summarize", "summarize", "summarize-en"),
    ("Answer", "answer", "answer-en"),
)
OPTIONS = ({}, {"beam_size": 4}, {}, {"max_output_tokens": 16}, {})  # by position, cycled


def _fits(model: str, text: str) -> bool:
    """The server's own rule: its tokenizer wrapper refuses a source over the limit."""
    folder = default_bundle(model)
    manifest = read_manifest(folder)
    tokenizer = open_tokenizer(folder, manifest)
    try:
        tokenizer.encode(text, max_tokens=manifest.max_source_length, field="text")
    except InvalidArgument:
        return False
    return True


def _line(rpc: str, dataset: str, record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if rpc == "Translate":
        fields = {"text": record["source"], "target_language": dataset.rpartition("-")[2]}
        return fields, record["source"]
    if rpc == "Summarize":
        return {"text": record["source"]}, record["source"]
    fields = {"question": record["question"], "context": record["context"]}
    return fields, answer_source_text(record["question"], record["context"])


def build() -> list[dict[str, Any]]:
    """One line per fitting held-out record, the models interleaved."""
    columns = []
    for rpc, dataset, model in SOURCES:
        lines = []
        for record in heldout(dataset):
            fields, source = _line(rpc, dataset, record)
            if _fits(model, source):
                options = OPTIONS[len(lines) % len(OPTIONS)]
                line = {"rpc": rpc, "id": f"{dataset}/{record['id']}", **fields}
                lines.append({**line, "options": options} if options else line)
        columns.append(lines)
    rows = []
    for position in range(max(len(c) for c in columns)):
        rows.extend(column[position] for column in columns if position < len(column))
    return rows


def render() -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in build())


def main() -> None:
    path: Path = default_mix_path()
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
