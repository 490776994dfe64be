"""Documents, many texts, `--from auto` and `seq2seq detect`: the SDK and the command line."""

from __future__ import annotations

import json
from pathlib import Path

from seq2seq_client import Seq2SeqClient, TextResult
from tests.client.conftest import ServerThread, run_cli

DOCUMENT = "A tool to compress files.\n\n * Lua bindings for Pure Data\n * a font for the console\n"


def test_sdk_document_many_texts_and_detect(served: ServerThread) -> None:
    with Seq2SeqClient(served.address, timeout=30) as client:
        document = client.translate(DOCUMENT, "fr")
        assert document.sentence_count == 3
        assert document.text.count("\n") == DOCUMENT.count("\n")
        assert "\n\n * " in document.text
        html = client.translate("<p>A tool to compress files.</p>", "de", text_format="html")
        assert html.text.startswith("<p>") and html.text.endswith("</p>")
        results = client.translate_many(["Lua bindings for Pure Data", ""], "it")
        assert all(isinstance(r, TextResult) for r in results)
        assert results[0].text and results[0].error is None
        assert results[1].error is not None and results[1].error.field == "texts[1]"
        ranked = client.detect("Un outil pour compresser des fichiers", top=2)
        assert [s.language for s in ranked][:1] == ["fr"] and len(ranked) == 2
        auto = client.translate("A tool to compress files", "fr", source_language="auto")
        assert auto.detected_language is not None and auto.detected_language.language == "en"


def test_cli_from_auto_reports_the_detection_on_stderr(served: ServerThread) -> None:
    result = run_cli(
        "translate",
        "A tool to compress files",
        "--to",
        "fr",
        "--from",
        "auto",
        "--target",
        served.address,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr.startswith("detected en (")


def test_cli_file_is_one_document(served: ServerThread, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(DOCUMENT, encoding="utf-8")
    result = run_cli("translate", "--file", str(path), "--to", "fr", "--target", served.address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == DOCUMENT.count("\n")
    assert "\n\n * " in result.stdout


def test_cli_detect(served: ServerThread) -> None:
    result = run_cli("detect", "Ein Werkzeug zum Packen von Dateien", "--target", served.address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("de\t")
    as_json = run_cli("detect", "Ein Werkzeug", "--top", "1", "--json", "--target", served.address)
    assert len(json.loads(as_json.stdout)) == 1


def test_cli_detect_without_text_is_one_line_exit_2(served: ServerThread) -> None:
    result = run_cli("detect", "--target", served.address)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "TEXT" in result.stderr
