"""Served throughput of server configurations side by side in one run, each a real server
process, with the CPU seconds of every process involved.

    python -m benchmarks.versus OUT_DIR [--base REF] [--rounds 3] [--seconds 20]
        [--concurrency 64] [--frontends 1,2,4]

Contestants: `base` (the server of commit REF, `git archive` unpacked into a temporary
folder, with its own defaults), `thread` and `process` (this checkout with `engine_mode`
thread and process), and `process-fN` for each N of `--frontends` (N front-end processes;
the load then spreads over 4 connections per front end). Each is started as
`python -m service` on a free loopback port over the committed translate-en-fr bundle
(`intra_op_threads=1`, `max_batch_size=32`, as the suite), warmed up, then loaded with the
suite's closed-loop clients (the load tester in a separate process) over the held-out
inputs. Rounds run the contestants in turn (A B C, A B C, ...) so that a shared machine's
drift falls on each alike; the report keeps every run and the median per contestant.
CPU seconds per run come from /proc: the server process, each of its child processes
(engine, follower front ends), and the load tester. Writes OUT_DIR/versus.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.load import LoadSpec, run_load, translate_mix
from benchmarks.offline import heldout_sources
from benchmarks.report import environment, print_table, write_json
from benchmarks.suite import DATASET, MODEL, fitting_sources, stat_cpu_seconds
from service.engine.repository import load_bundle
from service.engine.runtime import RuntimeOptions
from service.loadtest import run_report
from service.loadtest.runner import LoadConfig
from service.settings import DEFAULT_MODEL_REPOSITORY

ROOT = Path(__file__).resolve().parent.parent
COMMON_ENV = {  # what every contestant runs with (the suite's served settings)
    "SEQ2SEQ_PROVIDERS": '["cpu"]',
    "SEQ2SEQ_INTRA_OP_THREADS": "1",
    "SEQ2SEQ_MAX_BATCH_SIZE": "32",
    "SEQ2SEQ_MAX_QUEUE_SIZE": "1024",
    "SEQ2SEQ_LOG_LEVEL": "WARNING",
    "SEQ2SEQ_DRAIN_GRACE_PERIOD": "5",
}


@dataclass(frozen=True)
class Contestant:
    name: str
    checkout: Path  # where `service` is imported from
    env: dict[str, str] = field(default_factory=dict)  # SEQ2SEQ_* on top of COMMON_ENV
    connections: int = 1  # client connections (several front ends need several)


def unpack(ref: str, into: Path) -> Path:
    """The tree of commit `ref` of this repository, unpacked (no worktree is registered)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "service"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> dict[str, float]:
    """The process and each of its children (engine, follower front ends), by pid."""
    found = {"server": stat_cpu_seconds(Path(f"/proc/{pid}/stat"))}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found[f"child_{child}"] = stat_cpu_seconds(Path(f"/proc/{child}/stat"))
    return found


def wait_serving(port: int, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with status {process.returncode}")
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise RuntimeError("the server did not start serving in time")


class Versus:
    def __init__(self, models: Path, pool: Executor, seconds: float, concurrency: int) -> None:
        self.pool = pool
        self.seconds = seconds
        self.concurrency = concurrency
        self._tmp = tempfile.TemporaryDirectory()
        self.repo = Path(self._tmp.name) / "models"
        self.repo.mkdir()
        (self.repo / MODEL).symlink_to(models.resolve() / MODEL, target_is_directory=True)
        bundle = load_bundle(models / MODEL / "1", RuntimeOptions(providers=("cpu",)))
        self.mix = translate_mix(
            tuple(
                (text, 0) for text in fitting_sources(bundle, heldout_sources("translate", DATASET))
            )
        )

    async def run(self, contestant: Contestant) -> dict[str, Any]:
        port = free_port()
        env = {
            **os.environ,
            **COMMON_ENV,
            **contestant.env,
            "PYTHONPATH": str(contestant.checkout),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--metrics-port",
                "0",
                "--model-repository",
                str(self.repo),
            ],
            cwd=contestant.checkout,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, wait_serving, port, process)
            config = LoadConfig(
                target=f"127.0.0.1:{port}",
                mode="closed",
                concurrency=self.concurrency,
                connections=contestant.connections,
                duration=self.seconds,
                max_requests=10_000_000,
                deadline=60.0,
            )
            warm = replace(config, max_requests=64 * contestant.connections, duration=30.0)
            await loop.run_in_executor(self.pool, run_report, warm, self.mix)
            before = cpu_seconds(process.pid)
            result = await loop.run_in_executor(self.pool, run_load, LoadSpec(config, self.mix))
            after = cpu_seconds(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await loop.run_in_executor(None, process.wait, 60)
            except subprocess.TimeoutExpired:
                process.kill()
        children = sorted(k for k in after if k.startswith("child_"))
        result["cpu_seconds"] = {
            "server_process": round(after["server"] - before["server"], 3),
            "child_processes": [
                round(after[k] - before.get(k, 0.0), 3) for k in children
            ],  # engine and follower front ends, by pid order
            "load_tester": result["client_cpu_seconds"],
        }
        return result


def summarize(runs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in names:
        mine = [r for r in runs if r["contestant"] == name]
        cpu = [r["result"]["cpu_seconds"] for r in mine]
        requests = sum(r["result"]["requests"] for r in mine)
        summary[name] = {
            "requests_per_second": statistics.median(
                r["result"]["requests_per_second"] for r in mine
            ),
            "tokens_per_second": statistics.median(r["result"]["tokens_per_second"] for r in mine),
            "p50_ms": statistics.median(r["result"]["p50_ms"] for r in mine),
            "p99_ms": statistics.median(r["result"]["p99_ms"] for r in mine),
            "server_process_cpu_ms_per_request": round(
                1000 * sum(c["server_process"] for c in cpu) / max(requests, 1), 3
            ),
            "child_processes_cpu_ms_per_request": round(
                1000 * sum(sum(c["child_processes"]) for c in cpu) / max(requests, 1), 3
            ),
            "load_tester_cpu_ms_per_request": round(
                1000 * sum(c["load_tester"] for c in cpu) / max(requests, 1), 3
            ),
        }
    base = summary.get(names[0])
    if base:
        for name in names[1:]:
            summary[name]["throughput_vs_" + names[0]] = round(
                summary[name]["requests_per_second"] / base["requests_per_second"], 3
            )
    return summary


async def run_all(
    versus: Versus, contestants: list[Contestant], rounds: int
) -> list[dict[str, Any]]:
    runs = []
    for n in range(rounds):
        for contestant in contestants:
            result = await versus.run(contestant)
            runs.append({"round": n + 1, "contestant": contestant.name, "result": result})
            print(
                f"round {n + 1} {contestant.name}: {result['requests_per_second']} req/s, "
                f"p99 {result['p99_ms']} ms, cpu {result['cpu_seconds']}",
                flush=True,
            )
    return runs


def run_versus(
    out_dir: Path,
    *,
    base: str = "",
    models: Path = DEFAULT_MODEL_REPOSITORY,
    rounds: int = 3,
    seconds: float = 20.0,
    concurrency: int = 64,
    frontends: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Run every contestant `rounds` times in turn; print the table, write versus.json."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        contestants = []
        if base:
            contestants.append(Contestant("base", unpack(base, Path(tmp))))
        contestants += [
            Contestant("thread", ROOT, {"SEQ2SEQ_ENGINE_MODE": "thread"}),
            Contestant("process", ROOT, {"SEQ2SEQ_ENGINE_MODE": "process"}),
        ]
        contestants += [
            Contestant(
                f"process-f{n}",
                ROOT,
                {"SEQ2SEQ_ENGINE_MODE": "process", "SEQ2SEQ_FRONTEND_PROCESSES": str(n)},
                connections=4 * n,
            )
            for n in frontends
        ]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            versus = Versus(models, pool, seconds, concurrency)
            runs = asyncio.run(run_all(versus, contestants, rounds))
    names = [c.name for c in contestants]
    report = {
        "environment": environment(),
        "base": base or None,
        "settings": {
            **COMMON_ENV,
            "concurrency": concurrency,
            "seconds": seconds,
            "rounds": rounds,
        },
        "runs": runs,
        "summary": summarize(runs, names),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    header = ["contestant", "req/s", "tokens/s", "p50 ms", "p99 ms", f"vs {names[0]}"]
    header += ["server cpu ms/req", "children cpu ms/req"]
    print_table(
        header,
        [
            [
                name,
                s["requests_per_second"],
                s["tokens_per_second"],
                s["p50_ms"],
                s["p99_ms"],
                s.get(f"throughput_vs_{names[0]}", 1.0),
                s["server_process_cpu_ms_per_request"],
                s["child_processes_cpu_ms_per_request"],
            ]
            for name, s in report["summary"].items()
        ],
    )
    write_json(out_dir / "versus.json", report)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--base", default="", help="commit to compare with (git ref)")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--frontends",
        type=lambda text: tuple(int(x) for x in text.split(",")),
        default=(),
        help="also run engine_mode process with these numbers of front-end processes",
    )
    args = parser.parse_args()
    run_versus(
        args.out_dir,
        base=args.base,
        models=args.models,
        rounds=args.rounds,
        seconds=args.seconds,
        concurrency=args.concurrency,
        frontends=args.frontends,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
