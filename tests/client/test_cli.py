"""The `seq2seq` command line as a subprocess, against a running server and a stopped one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import ServerThread, free_port, run_cli
from tests.conftest import REPO_ROOT, heldout

FR = [record["source"] for record in heldout("translate-en-fr")[:3]]
SUMMARY_SOURCE = heldout("summarize")[1]["source"]
QA = heldout("answer")[:2]


def _ok(*args: str, stdin: str | None = None) -> str:
    result = run_cli(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def _one_line_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("seq2seq: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_translate_prints_the_text(served: ServerThread) -> None:
    out = _ok("translate", FR[1], "--to", "fr", "--from", "en", "--target", served.address)
    assert len(out.splitlines()) == 1
    assert out.strip()


def test_target_from_the_environment(served: ServerThread) -> None:
    result = run_cli("summarize", SUMMARY_SOURCE, env={"SEQ2SEQ_TARGET": served.address})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_json_output_is_the_result(served: ServerThread) -> None:
    out = _ok("translate", FR[1], "--to", "fr", "--json", "--target", served.address)
    result = json.loads(out)
    assert result["model"]["name"] == "translate-en-fr"
    assert result["hypotheses"][0]["text"].strip()
    assert result["source_tokens"][-1] == "</s>"


def test_answer_with_a_context_file_and_from_stdin(served: ServerThread, tmp_path: Path) -> None:
    context = tmp_path / "context.txt"
    context.write_text(QA[1]["context"], encoding="utf-8")
    from_file = _ok(
        "answer", QA[1]["question"], "--context", str(context), "--json", "--target", served.address
    )
    from_stdin = _ok(
        "answer",
        QA[1]["question"],
        "--context",
        "-",
        "--json",
        "--target",
        served.address,
        stdin=QA[1]["context"],
    )
    assert json.loads(from_file)["answer"] == json.loads(from_stdin)["answer"]
    assert json.loads(from_file)["model"]["name"] == "answer-en"


def test_stream_prints_the_tokens_then_ends_the_line(served: ServerThread) -> None:
    unary = _ok("summarize", SUMMARY_SOURCE, "--target", served.address)
    streamed = _ok("summarize", SUMMARY_SOURCE, "--stream", "--target", served.address)
    assert streamed.strip() == unary.strip()
    events = [
        json.loads(line)
        for line in _ok(
            "translate", FR[1], "--to", "fr", "--stream", "--json", "--target", served.address
        ).splitlines()
    ]
    assert all("token" in e for e in events[:-1]) and len(events) > 1
    assert "result" in events[-1]


def test_models_table_and_json(served: ServerThread) -> None:
    table = _ok("models", "--target", served.address)
    assert re.search(r"^translate-en-fr\s+1 \(default\)\s+translate\s+en->fr", table, re.M)
    models = json.loads(_ok("models", "--json", "--task", "answer", "--target", served.address))
    assert [m["name"] for m in models] == ["answer-en"]


def test_attention_table_has_a_row_per_output_token(served: ServerThread) -> None:
    out = _ok(
        "translate",
        FR[1],
        "--to",
        "fr",
        "--attention",
        "--max-output-tokens",
        "8",
        "--target",
        served.address,
    )
    result = json.loads(
        _ok(
            "translate",
            FR[1],
            "--to",
            "fr",
            "--json",
            "--attention",
            "--max-output-tokens",
            "8",
            "--target",
            served.address,
        )
    )
    best = result["hypotheses"][0]
    assert best["attention"]["rows"] == len(best["target_tokens"]) <= 8
    assert best["attention"]["cols"] == len(result["source_tokens"])
    lines = out.splitlines()
    assert lines[0] == best["text"]
    rows = [line for line in lines if re.search(r" [·░▒▓█]{2}", line)]
    assert len(rows) == len(best["target_tokens"])
    cells = re.search(r" ([·░▒▓█]+)  ", rows[0])
    assert cells is not None and len(cells.group(1)) == 2 * len(result["source_tokens"])
    assert any(line.startswith("weights:") for line in lines)


def test_attention_png_is_written(served: ServerThread, tmp_path: Path) -> None:
    png = tmp_path / "attention.png"
    _ok("translate", FR[1], "--to", "fr", "--attention-png", str(png), "--target", served.address)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 1000


def test_input_file_gives_one_result_per_line(served: ServerThread, tmp_path: Path) -> None:
    inputs = tmp_path / "texts.txt"
    inputs.write_text("\n".join([FR[0], "", FR[1], FR[2]]) + "\n", encoding="utf-8")
    out = _ok("translate", "--input", str(inputs), "--to", "fr", "--target", served.address)
    assert len(out.splitlines()) == 3
    singles = [_ok("translate", text, "--to", "fr", "--target", served.address) for text in FR]
    assert out.splitlines() == [single.strip("\n") for single in singles]
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(json.dumps({"question": r["question"], "context": r["context"]}) for r in QA),
        encoding="utf-8",
    )
    answers = _ok("answer", "--input", str(questions), "--json", "--target", served.address)
    assert [json.loads(line)["model"]["name"] for line in answers.splitlines()] == ["answer-en"] * 2


def test_server_errors_are_one_line_exit_1(served: ServerThread) -> None:
    beam = run_cli(
        "translate", FR[1], "--to", "fr", "--beam-size", "99", "--target", served.address
    )
    _one_line_error(beam, 1, "INVALID_ARGUMENT", "beam")
    unknown = run_cli(
        "translate", FR[1], "--to", "fr", "--model", "nope", "--target", served.address
    )
    _one_line_error(unknown, 1, "NOT_FOUND")
    streamed = run_cli("summarize", " ", "--stream", "--target", served.address)
    _one_line_error(streamed, 1, "INVALID_ARGUMENT")


@pytest.mark.parametrize("command", ["translate", "summarize", "answer", "models"])
def test_stopped_server_is_one_line_exit_1(command: str, tmp_path: Path) -> None:
    context = tmp_path / "context.txt"
    context.write_text("some context", encoding="utf-8")
    args = {
        "translate": ["translate", "hello", "--to", "fr"],
        "summarize": ["summarize", "hello", "--stream"],
        "answer": ["answer", "who?", "--context", str(context)],
        "models": ["models", "--json"],
    }[command]
    result = run_cli(*args, "--target", f"127.0.0.1:{free_port()}", "--timeout", "10")
    _one_line_error(result, 1, "UNAVAILABLE")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["answer", "who?", "--context", "/no/such/context.txt"], "cannot read context file"),
        (["answer", "who?"], "--context"),
        (["translate", "hello"], "--to"),
        (["translate", "--to", "fr"], "TEXT"),
        (["translate", "hello", "--to", "fr", "--input", "/no/such/file"], "not both"),
        (["summarize", "--input", "/no/such/file"], "cannot read input file"),
        (["summarize", "hi", "--beam-size", "-1"], "must be >= 0"),
        (["summarize", "hi", "--timeout", "soon"], "not a number"),
        (["summarize", "hi", "--length-penalty", "-1"], "must be a finite number >= 0"),
        (["summarize", "hi", "--length-penalty", "nan"], "must be a finite number >= 0"),
        (["fly"], "invalid choice"),
    ],
)
def test_usage_and_local_input_errors_exit_2(args: list[str], fragment: str) -> None:
    result = run_cli(*args, "--target", f"127.0.0.1:{free_port()}")
    _one_line_error(result, 2, fragment)


def test_bad_jsonl_line_names_the_line(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "a", "context": "b"}\nnot json\n', encoding="utf-8")
    result = run_cli("answer", "--input", str(questions), "--target", f"127.0.0.1:{free_port()}")
    _one_line_error(result, 2, "q.jsonl:2")


def test_n_best_alone_asks_for_a_beam_that_wide(served: ServerThread) -> None:
    out = _ok("translate", FR[1], "--to", "fr", "--n-best", "3", "--target", served.address)
    ranked = [line for line in out.splitlines() if re.match(r"^\d\. ", line)]
    assert [line[:3] for line in ranked] == ["1. ", "2. ", "3. "]


def test_length_penalty_changes_the_beam_scores(served: ServerThread) -> None:
    def best_score(*extra: str) -> float:
        args = ("translate", FR[1], "--to", "fr", "--beam-size", "4", "--json", *extra)
        return json.loads(_ok(*args, "--target", served.address))["hypotheses"][0]["score"]

    plain, penalised = best_score(), best_score("--length-penalty", "1.0")
    assert penalised > plain  # the log-probability sum divided by ((5 + len) / 6) ** 1 > 1


def test_scores_prints_a_log_probability_per_output_token(served: ServerThread) -> None:
    args = ("translate", FR[1], "--to", "fr", "--target", served.address)
    text, *rows = _ok(*args, "--scores").splitlines()
    result = json.loads(_ok(*args, "--scores", "--json"))
    best = result["hypotheses"][0]
    assert text == best["text"]
    assert len(rows) == len(best["target_tokens"]) == len(best["token_scores"]) > 0
    for row, token, score in zip(rows, best["target_tokens"], best["token_scores"], strict=True):
        assert row.split() == [token, f"{score:.3f}"]


@pytest.mark.parametrize("command", ["translate", "summarize", "answer", "models"])
def test_a_subcommand_usage_line_names_the_subcommand(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.stdout.startswith(f"usage: seq2seq {command} ")
    error = run_cli(command, "--timeout", "soon")
    assert f"(see seq2seq {command} --help)" in error.stderr


def test_help_exits_0() -> None:
    result = run_cli("translate", "--help")
    assert result.returncode == 0
    assert "--attention-png" in result.stdout


def test_the_client_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, seq2seq_client, seq2seq_client.commands, seq2seq_client.aio;"
        "from seq2seq_client import Seq2SeqClient;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('onnxruntime', 'numpy', 'torch',"
        " 'matplotlib', 'service')];"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"  # the source walls: tests/test_static.py
