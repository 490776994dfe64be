"""benchmarks.compare_commits on this checkout alone: each probe imports the tree it is
pointed at and decodes what the offline API decodes; the server it starts answers the load
tester; the summary pairs rounds. No speed is asserted."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from benchmarks.compare_commits import (
    METRICS,
    ROOT,
    OfflineCase,
    Plan,
    load_run,
    offline_run,
    served,
    summarize,
    write_mix,
)
from benchmarks.offline import heldout_sources
from service.engine.offline import Seq2SeqEngine

SOURCES = heldout_sources("translate", "translate-en-fr")[:3]
TINY = Plan(threads=1, offline_warmup=2, duration=1.0, concurrency=2, warmup_seconds=0.2)


@pytest.mark.parametrize("beam_size", [1, 2])
def test_probe_runs_in_the_given_tree_and_decodes_what_the_offline_api_does(
    beam_size: int,
) -> None:
    result = offline_run(ROOT, OfflineCase("tiny", 4, beam_size, 6), SOURCES, TINY)
    assert result["service_package"] == str(ROOT / "service")
    assert result["driver"] == "offline API"
    engine = Seq2SeqEngine(ROOT / "models" / "translate-en-fr" / "1", intra_op_threads=1)
    batch = list(itertools.islice(itertools.cycle(SOURCES), 6))
    expected = engine.generate_batch(batch, beam_size=beam_size)
    assert result["requests"] == 6 and result["cpu_seconds"] > 0
    assert result["output_tokens"] == sum(len(r.best.token_ids) for r in expected)


def test_served_tree_answers_the_load_tester(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    model = ROOT / "models" / "translate-en-fr"
    (repository / "translate-en-fr").symlink_to(model, target_is_directory=True)
    mix = tmp_path / "mix.jsonl"
    write_mix(mix, SOURCES)
    with served(ROOT, TINY, repository) as server:
        assert server.target.startswith("127.0.0.1:") and not server.target.endswith(":0")
        figures = load_run(server, mix, TINY, tmp_path / "load.json")
    assert figures["requests"] > 0 and figures["errors"] == {}
    assert figures["server_cpu_seconds"] > 0
    assert figures["server_cpu_seconds"] == pytest.approx(
        figures["frontend_cpu_seconds"] + figures["child_cpu_seconds"], abs=0.002
    )
    assert figures["output_tokens"] > 0 and figures["p50_ms"] <= figures["p99_ms"]


def _runs(value: float) -> dict[str, dict[str, float]]:
    """Every figure of one tree in one round set to `value`."""
    cases = [case.name for case in Plan.offline]
    fields = (
        "tokens_per_second",
        "requests_per_second",
        "tokens_per_cpu_second",
        "tokens_per_server_cpu_second",
        "frontend_cpu_seconds",
        "child_cpu_seconds",
        "p50_ms",
        "p99_ms",
    )
    return {case: dict.fromkeys(fields, value) for case in [*cases, "served"]}


def test_summary_takes_medians_and_pairs_each_round() -> None:
    # old, new per round: the new tree is 2x, 1x, 3x the old one in rounds that drift.
    rounds = [
        {"runs": {"old": _runs(old), "new": _runs(new)}}
        for old, new in ((10.0, 20.0), (40.0, 40.0), (20.0, 60.0))
    ]
    rows = {row["figure"]: row for row in summarize(rounds)}
    assert len(rows) == len(METRICS)
    row = rows["served requests/s"]
    assert (row["old_median"], row["new_median"]) == (20.0, 40.0)
    assert row["new_over_old"] == 2.0
    assert row["paired_ratio_median"] == 2.0 and row["paired_ratio_range"] == [1.0, 3.0]
    assert rows["served p99 ms"]["higher_is_better"] is False
    ratio = rows["served / offline greedy bs32 tokens/s"]
    assert ratio["old_median"] == 1.0 and ratio["new_median"] == 1.0


def test_summary_leaves_out_what_a_run_did_not_measure() -> None:
    offline_only = {name: figures for name, figures in _runs(1.0).items() if name != "served"}
    rows = summarize([{"runs": {"old": offline_only, "new": offline_only}}])
    assert rows and not any(row["figure"].startswith("served") for row in rows)


def test_summary_of_a_served_only_run_has_no_offline_rows() -> None:
    served_only = {"served": _runs(1.0)["served"]}
    rows = summarize([{"runs": {"old": served_only, "new": served_only}}])
    assert rows and all(row["figure"].startswith("served") for row in rows)
    assert not any("offline" in row["figure"] for row in rows)
