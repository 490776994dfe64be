"""Offline and served throughput of two commits, side by side in one run (issue 13's check).

    python -m benchmarks.compare_commits [--old cfbe459] [--rounds 5] [--duration 12]
        [--json docs/results/house_before_after.json]

The old commit (and `--new`, when given) is checked out into a temporary git worktree,
removed at the end; by default the new tree is this checkout. Rounds are interleaved (each
measurement of one tree right after the other's, old first in odd rounds and new first in
even ones) because the machine is shared and its speed drifts; the table gives medians over
the rounds and the median of the per-round new/old ratios, and CPU seconds per token beside
wall-clock throughput (waiting for a core does not count there). Every measurement runs in
its own subprocess with cwd and PYTHONPATH set to its tree, so each imports its own
`service`:

  offline  `benchmarks.offline.offline_throughput` of each tree on translate-en-fr/1 (greedy
           at batch 32 and 1, beam 4 at batch 32; `benchmarks/commit_probe.py`)
  served   each tree's `python -m service` (its `seq2seq-serve`) on 127.0.0.1 (port 0), driven
           closed loop by THIS tree's load tester (`python -m seq2seq_client.loadtest.cli`) with
           one Translate mix of the held-out en->fr sources for both

Both use the same onnxruntime thread count (`--threads`) and max_batch_size 32. Server CPU
seconds count the server process and its child processes (engine-core processes and
follower front ends), split into front end (the server process) and children.
`--old-env` / `--new-env KEY=VALUE` set settings of one tree's server (e.g.
`SEQ2SEQ_ENGINE_MODE=thread` to compare the engine modes of one commit, with `--old HEAD`);
`--connections` spreads the load over several connections (several front-end processes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.load import report_figures
from benchmarks.offline import heldout_sources
from benchmarks.report import environment, print_table, write_json
from benchmarks.suite import fitting_sources
from service.engine.repository import load_bundle
from service.engine.runtime import RuntimeOptions

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("commit_probe.py")
MODEL = "translate-en-fr"
TREES = ("old", "new")
READY = re.compile(r"serving (\d+) model\(s\) on [^\s:]+:(\d+)")


@dataclass(frozen=True)
class OfflineCase:
    name: str
    batch_size: int
    beam_size: int
    requests: int


@dataclass(frozen=True)
class Plan:
    """What every round measures; the same for both trees."""

    rounds: int = 5
    threads: int = 2  # onnxruntime intra-op threads, offline and served
    max_batch_size: int = 32
    duration: float = 12.0  # seconds of each served window
    concurrency: int = 32  # closed-loop clients
    warmup_seconds: float = 2.0  # served warm-up, not measured
    served: bool = True  # False: the offline measurements only
    connections: int = 1  # load tester connections (several front ends need several)
    env: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # tree -> extra settings
    offline_warmup: int = 64  # offline requests decoded before the timed run
    offline: tuple[OfflineCase, ...] = (
        OfflineCase("greedy_bs32", 32, 1, 512),
        OfflineCase("greedy_bs1", 1, 1, 64),
        OfflineCase("beam4_bs32", 32, 4, 128),
    )


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """`commit` checked out (detached) in a temporary worktree, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="compare-commit-")) / "tree"
    git("worktree", "add", "--detach", str(folder), commit)
    try:
        yield folder
    finally:
        git("worktree", "remove", "--force", str(folder))
        folder.parent.rmdir()


def tree_env(tree: Path, threads: int) -> dict[str, str]:
    """This process's environment without SEQ2SEQ_* settings, importing from `tree`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQ2SEQ_")}
    env.update(PYTHONPATH=str(tree), SEQ2SEQ_INTRA_OP_THREADS=str(threads))
    return env


def offline_run(tree: Path, case: OfflineCase, sources: list[str], plan: Plan) -> dict[str, Any]:
    spec = {
        "bundle": str(tree / "models" / MODEL / "1"),
        "sources": sources,
        "batch_size": case.batch_size,
        "beam_size": case.beam_size,
        "requests": case.requests,
        "warmup_requests": min(plan.offline_warmup, case.requests),
        "threads": plan.threads,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE.read_text(), json.dumps(spec)],
        cwd=tree,
        env=tree_env(tree, plan.threads),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"offline {case.name} in {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Server:
    target: str  # host:port of its gRPC port
    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The child processes of `pid` (engine-core processes, follower front ends)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of `pid` and of each of its children, by pid."""
    return {p: cpu_seconds(p) for p in (pid, *children(pid))}


@contextmanager
def served(
    tree: Path, plan: Plan, repository: Path, settings: dict[str, str] | None = None
) -> Iterator[Server]:
    """`tree`'s server on 127.0.0.1 (ports picked by the OS); `settings`: SEQ2SEQ_* env."""
    command = [
        *(sys.executable, "-m", "service", "--model-repository", str(repository)),
        *("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--providers", "cpu"),
        *("--max-batch-size", str(plan.max_batch_size), "--log-format", "text"),
        *("--log-level", "INFO"),
    ]
    env = {
        **tree_env(tree, plan.threads),
        "SEQ2SEQ_METRICS_HOST": "127.0.0.1",
        "SEQ2SEQ_HTTP_ENABLED": "false",  # gRPC is measured (and 8000 may be taken)
        **(settings or {}),
    }
    process = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    lines: deque[str] = deque(maxlen=50)
    ready = threading.Event()
    port: list[int] = []

    def drain() -> None:  # the log must be read to the end or the server blocks on it
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if not ready.is_set() and (match := READY.search(line)):
                port.append(int(match.group(2)))
                ready.set()
        ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not ready.wait(120) or not port:
            raise RuntimeError(f"the server in {tree} did not start:\n{''.join(lines)}")
        yield Server(f"127.0.0.1:{port[0]}", process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)


def _load_tester(server: Server, mix: Path, plan: Plan, seconds: float, *extra: str) -> None:
    command = [
        *(sys.executable, "-m", "seq2seq_client.loadtest.cli", "--target", server.target),
        *("--mix", str(mix), "--concurrency", str(plan.concurrency)),
        *("--duration", str(seconds), "--warmup-seconds", "0", "--quiet", *extra),
        *(("--connections", str(plan.connections)) if plan.connections > 1 else ()),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=tree_env(ROOT, plan.threads), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"load tester failed ({done.returncode}): {done.stderr[-2000:]}")


def load_run(server: Server, mix: Path, plan: Plan, out: Path) -> dict[str, Any]:
    """This tree's load tester, closed loop: a warm-up run, then the measured one with the
    server's CPU seconds around it (waiting for a core does not count there)."""
    _load_tester(server, mix, plan, plan.warmup_seconds)
    before = process_tree_cpu(server.pid)
    _load_tester(server, mix, plan, plan.duration, "--json", str(out))
    after = process_tree_cpu(server.pid)
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    cpu = sum(spent.values())
    figures = report_figures(json.loads(out.read_text()))
    return {
        **figures,
        "server_cpu_seconds": round(cpu, 3),  # the server process and its children
        "frontend_cpu_seconds": round(spent[server.pid], 3),  # the server process alone
        "child_cpu_seconds": round(cpu - spent[server.pid], 3),  # engine processes, followers
        "tokens_per_server_cpu_second": round(figures["output_tokens"] / cpu, 1) if cpu else None,
    }


def write_mix(path: Path, sources: list[str]) -> None:
    """One Translate en->fr line per held-out source, no options (the model's own length)."""
    lines = (
        json.dumps(
            {"rpc": "Translate", "text": s, "source_language": "en", "target_language": "fr"}
        )
        for s in sources
    )
    path.write_text("\n".join(lines) + "\n")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(label: str, fn: Any, *args: Any) -> dict[str, Any]:
    before = loadavg()
    result = fn(*args)
    result["loadavg_before"], result["loadavg_after"] = before, loadavg()
    print(f"  {label}: {result['tokens_per_second']} tok/s, load {before[0]}", flush=True)
    return result


def measure_round(
    trees: dict[str, Path],
    repos: dict[str, Path],
    sources: list[str],
    mix: Path,
    plan: Plan,
    order: tuple[str, ...],
) -> dict[str, Any]:
    """Every measurement once per tree, the trees in `order`, one right after the other."""
    runs: dict[str, dict[str, Any]] = {tree: {} for tree in TREES}
    for case in plan.offline:
        for tree in order:
            runs[tree][case.name] = timed(
                f"{tree} {case.name}", offline_run, trees[tree], case, sources, plan
            )
    settings = {tree: dict(env) for tree, env in plan.env}
    for tree in order if plan.served else ():
        with (
            tempfile.TemporaryDirectory() as tmp,
            served(trees[tree], plan, repos[tree], settings.get(tree)) as server,
        ):
            runs[tree]["served"] = timed(
                f"{tree} served", load_run, server, mix, plan, Path(tmp) / "load.json"
            )
    return runs


def _figure(case: str, metric: str) -> Any:
    return lambda runs: runs[case][metric] if case in runs else None


def _served_over_offline(runs: dict[str, Any]) -> float | None:
    """The suite's b: served / offline output tokens per second at the same batch size."""
    if "served" not in runs or "greedy_bs32" not in runs:
        return None
    return runs["served"]["tokens_per_second"] / runs["greedy_bs32"]["tokens_per_second"]


OFFLINE_NAMES = tuple(case.name for case in Plan.offline)
# (row label, getter of one tree's figure in one round, higher is better)
METRICS: tuple[tuple[str, Any, bool], ...] = (
    *(
        (f"offline {c} target tokens/s", _figure(c, "tokens_per_second"), True)
        for c in OFFLINE_NAMES
    ),
    *((f"offline {c} requests/s", _figure(c, "requests_per_second"), True) for c in OFFLINE_NAMES),
    *(
        (f"offline {c} target tokens per CPU second", _figure(c, "tokens_per_cpu_second"), True)
        for c in OFFLINE_NAMES
    ),
    ("served requests/s", _figure("served", "requests_per_second"), True),
    ("served output tokens/s", _figure("served", "tokens_per_second"), True),
    ("served p50 ms", _figure("served", "p50_ms"), False),
    ("served p99 ms", _figure("served", "p99_ms"), False),
    (
        "served output tokens per server CPU second",
        _figure("served", "tokens_per_server_cpu_second"),
        True,
    ),
    ("served CPU s, server process (front end)", _figure("served", "frontend_cpu_seconds"), False),
    ("served CPU s, its child processes (engine)", _figure("served", "child_cpu_seconds"), False),
    ("served / offline greedy bs32 tokens/s", _served_over_offline, True),
)


def summarize(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per figure: each tree's median over the rounds, their ratio, and the median (and
    range) of the per-round new/old ratios, which cancel drift that hits both alike."""
    rows = []
    for label, figure, higher_is_better in METRICS:
        values = {t: [figure(r["runs"][t]) for r in rounds] for t in TREES}
        if None in values["old"] + values["new"]:
            continue  # not measured in this run
        paired = [n / o for o, n in zip(values["old"], values["new"], strict=True) if o]
        old, new = (statistics.median(values[t]) for t in TREES)
        rows.append(
            {
                "figure": label,
                "old_median": round(old, 3),
                "new_median": round(new, 3),
                "new_over_old": round(new / old, 3) if old else None,
                "paired_ratio_median": round(statistics.median(paired), 3) if paired else None,
                "paired_ratio_range": [round(min(paired), 3), round(max(paired), 3)]
                if paired
                else None,
                "higher_is_better": higher_is_better,
            }
        )
    return rows


def table_rows(summary: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for row in summary:
        low, high = row["paired_ratio_range"] or ("", "")
        rows.append(
            [
                row["figure"],
                row["old_median"],
                row["new_median"],
                row["new_over_old"],
                f"{row['paired_ratio_median']} ({low}-{high})",
            ]
        )
    return rows


HEADER = ["figure (medians)", "old", "new", "new/old", "per-round new/old (range)"]


def compare(old_commit: str, new_commit: str | None, plan: Plan, json_path: Path) -> dict[str, Any]:
    """`new_commit` None: this checkout as it is (uncommitted changes included)."""
    started = time.perf_counter()
    bundle = load_bundle(ROOT / "models" / MODEL / "1", RuntimeOptions(providers=("cpu",)))
    sources = fitting_sources(bundle, heldout_sources("translate", MODEL))
    report: dict[str, Any] = {
        "environment": environment(),
        "commits": {
            "old": git("rev-parse", old_commit),
            "new": git("rev-parse", new_commit or "HEAD"),
            "new_tree_dirty": new_commit is None
            and bool(git("status", "--porcelain", "--untracked-files=no")),
        },
        "command": " ".join(["python -m benchmarks.compare_commits", *sys.argv[1:]]),
        "plan": asdict(plan),
        "sources": len(sources),
        "rounds": [],
    }
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        trees = {
            "old": stack.enter_context(worktree(old_commit)),
            "new": stack.enter_context(worktree(new_commit)) if new_commit else ROOT,
        }
        repos = {}
        for tree, path in trees.items():  # one model per server, as in the suite
            repos[tree] = Path(tmp) / f"repo-{tree}"
            repos[tree].mkdir()
            (repos[tree] / MODEL).symlink_to(path / "models" / MODEL, target_is_directory=True)
        mix = Path(tmp) / "mix.jsonl"
        write_mix(mix, sources)
        for n in range(plan.rounds):
            print(f"round {n + 1}/{plan.rounds}", flush=True)
            order = TREES if n % 2 == 0 else TREES[::-1]  # old-new, new-old, ... (ABBA)
            before = loadavg()
            runs = measure_round(trees, repos, sources, mix, plan, order)
            report["rounds"].append(
                {
                    "round": n + 1,
                    "order": list(order),
                    "loadavg_before": before,
                    "loadavg_after": loadavg(),
                    "runs": runs,
                }
            )
    report["summary"] = summarize(report["rounds"])
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print_table(HEADER, table_rows(report["summary"]))
    write_json(json_path, report)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="cfbe459", help="the commit to compare against")
    parser.add_argument(
        "--new", help="the commit to compare with it (default: this checkout as it is)"
    )
    parser.add_argument("--rounds", type=int, default=Plan.rounds)
    parser.add_argument("--duration", type=float, default=Plan.duration, help="served seconds")
    parser.add_argument("--offline-only", action="store_true", help="no served measurements")
    parser.add_argument("--served-only", action="store_true", help="no offline measurements")
    parser.add_argument("--threads", type=int, default=Plan.threads)
    parser.add_argument("--concurrency", type=int, default=Plan.concurrency)
    parser.add_argument(
        "--connections", type=int, default=Plan.connections, help="load tester connections"
    )
    for tree in TREES:
        parser.add_argument(
            f"--{tree}-env",
            action="append",
            default=[],
            metavar="SEQ2SEQ_NAME=VALUE",
            help=f"a setting of the {tree} tree's server (repeatable)",
        )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "docs" / "results" / "house_before_after.json"
    )
    args = parser.parse_args()
    env = []
    for tree in TREES:
        pairs = [item.split("=", 1) for item in getattr(args, f"{tree}_env")]
        if any(len(p) != 2 or not p[0].startswith("SEQ2SEQ_") for p in pairs):
            parser.error(f"--{tree}-env takes SEQ2SEQ_NAME=VALUE")
        env.append((tree, tuple((k, v) for k, v in pairs)))
    if args.offline_only and args.served_only:
        parser.error("--offline-only and --served-only exclude each other")
    if args.rounds < 1 or args.duration <= 0 or args.threads < 1 or args.concurrency < 1:
        parser.error("--rounds, --duration, --threads and --concurrency must be positive")
    plan = Plan(
        rounds=args.rounds,
        duration=args.duration,
        threads=args.threads,
        concurrency=args.concurrency,
        served=not args.offline_only,
        offline=() if args.served_only else Plan.offline,
        connections=args.connections,
        env=tuple(env),
    )
    compare(args.old, args.new, plan, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
