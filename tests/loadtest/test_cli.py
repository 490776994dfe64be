"""seq2seq-load against a real server on loopback: bad input refused before any load, and
real closed- and open-loop runs that write the JSON report and the PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import ServerThread, free_port
from tests.conftest import REPO_ROOT
from tests.loadtest.conftest import run_load, started, translate, write_mix

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_installed_as_a_console_script() -> None:
    script = Path(sys.executable).with_name("seq2seq-load")  # pip install -e . puts it here
    assert script.exists(), "reinstall: pip install -e '.[export,dev]'"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Load test a running seq2seq server" in done.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"rpc": "Transcribe", "text": "x"}, ":2: unknown rpc 'Transcribe'"),
        ('{"rpc": "Translate", "text": ', ":2: not valid JSON"),
        ({"rpc": "Answer", "question": "Who?"}, ":2: Answer needs a 'context' field"),
    ],
    ids=["unknown-rpc", "malformed-json", "missing-field"],
)
def test_a_bad_mix_is_refused_and_nothing_is_sent(
    load_server: ServerThread, tmp_path: Path, line: object, message: str
) -> None:
    mix = write_mix(tmp_path, [translate(), line])
    before = started(load_server)
    ran = run_load("--target", load_server.address, "--mix", str(mix), "-n", "5", "--quiet")
    assert ran.code == 2
    assert ran.stderr.startswith("seq2seq-load: error: ") and ran.stderr.count("\n") == 1
    assert f"{mix}{message}" in ran.stderr
    assert ran.stdout == ""
    assert started(load_server) == before  # not even the pre-flight ListModels


def test_a_model_the_server_lacks_is_refused_after_listmodels_only(
    load_server: ServerThread, tmp_path: Path
) -> None:
    mix = write_mix(tmp_path, [translate(), translate(target_language="ja")])
    before = load_server.calls("Translate")
    ran = run_load("--target", load_server.address, "--mix", str(mix), "-n", "5", "--quiet")
    assert ran.code == 2
    assert "lacks what" in ran.stderr and "line 2: no translate model for en->ja" in ran.stderr
    assert load_server.calls("Translate") == before


def test_an_unreachable_target_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    report = str(tmp_path / "r.json")
    done = subprocess.run(
        [sys.executable, "-m", "seq2seq_client.loadtest.cli", "--target", target, "--json", report],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("seq2seq-load: error: cannot reach 127.0.0.1:")
    assert "UNAVAILABLE" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "poisson"], "needs a rate > 0"),
        (["--mode", "bogus"], "invalid choice"),
        (["-c", "0"], "must be >= 1"),
        (["--json", "/nonexistent-folder/r.json"], "not a writable file path"),
    ],
)
def test_bad_arguments_exit_2_before_any_load(
    load_server: ServerThread, args: list[str], message: str
) -> None:
    before = started(load_server)
    ran = run_load("--target", load_server.address, "--quiet", *args)
    assert ran.code == 2 and message in ran.stderr
    assert started(load_server) == before


def test_plot_without_matplotlib_is_refused_first(
    load_server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    before = started(load_server)
    ran = run_load("--target", load_server.address, "--plot", str(tmp_path / "p.png"))
    assert ran.code == 2 and "--plot needs matplotlib" in ran.stderr
    assert started(load_server) == before


def test_closed_loop_run_writes_report_and_plot(load_server: ServerThread, tmp_path: Path) -> None:
    report_path, plot_path = tmp_path / "run.json", tmp_path / "run.png"
    ran = run_load(
        "--target", load_server.address, "-c", "4", "-n", "36", "-d", "60",
        "--warmup-requests", "6", "--json", str(report_path), "--plot", str(plot_path), "--quiet",
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert "throughput" in ran.stdout and "p99" in ran.stdout
    report = json.loads(report_path.read_text())
    assert report["requests"]["measured"] == 36  # the count bound ended it
    assert report["requests"]["ok"] == 36 and report["errors_by_code"] == {}
    assert report["requests"]["warmup"] == 6
    assert report["config"]["mix"]["requests_per_pass"] == {
        "Translate": 90,
        "Summarize": 30,
        "Answer": 30,
    }
    assert set(report["latency_ms_by_rpc"]) == {"Translate", "Summarize", "Answer"}
    lat = report["latency_ms"]
    assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["p99_9_ms"] <= lat["max_ms"]
    assert report["throughput_rps"] > 0 and report["output_tokens_per_second"] > 0
    assert sum(row["ok"] for row in report["timeline"]) == 36
    assert sum(n for _, n in report["latency_histogram_ms"]) == 36
    assert {"cpu", "cpus_usable", "python"} <= report["machine"].keys()
    assert {m["name"] for m in report["models"]} >= {"translate-en-fr", "answer-en"}
    assert plot_path.read_bytes().startswith(PNG_MAGIC)


def test_open_loop_poisson_run_measures_from_the_intended_time(
    load_server: ServerThread, tmp_path: Path
) -> None:
    report_path = tmp_path / "open.json"
    ran = run_load(
        "--target", load_server.address, "--mode", "poisson", "--rate", "40", "-n", "30",
        "-d", "60", "--warmup-seconds", "0", "--seed", "3", "--json", str(report_path), "--quiet",
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    report = json.loads(report_path.read_text())
    requests = report["requests"]
    assert requests["measured"] + requests["dropped"] == 30
    assert requests["errors"] == 0
    assert report["offered_rps"] == 40 and report["config"]["seed"] == 3
    assert report["send_lag_ms"]["p50_ms"] is not None  # sent - intended, recorded per call
    assert sum(row["sent"] for row in report["timeline"]) == requests["measured"]


def test_failed_calls_are_counted_by_status_code(load_server: ServerThread, tmp_path: Path) -> None:
    report_path = tmp_path / "deadline.json"
    mix = write_mix(tmp_path, [translate(options={"beam_size": 99})])  # over max_beam_size
    ran = run_load(
        "--target", load_server.address, "--mix", str(mix), "-c", "2", "-n", "6",
        "--warmup-seconds", "0", "--json", str(report_path), "--quiet",
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    report = json.loads(report_path.read_text())
    assert report["errors_by_code"] == {"INVALID_ARGUMENT": 6}
    assert report["requests"]["ok"] == 0 and report["latency_ms"]["p50_ms"] is None
    assert "INVALID_ARGUMENT 6" in ran.stdout


def test_json_report_on_standard_output(load_server: ServerThread) -> None:
    ran = run_load(
        "--target", load_server.address, "-c", "2", "-n", "4", "--warmup-seconds", "0",
        "--json", "-", "--quiet",
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert json.loads(ran.stdout)["requests"]["ok"] == 4
    assert "throughput" in ran.stderr  # the summary moves out of the way
