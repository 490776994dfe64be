"""A bounded soak: a fixed fraction of saturation for --seconds, RSS and latency per window.

Not run in CI (minutes). It starts `python -m service` on loopback with the default bundles
on the CPU, measures saturation throughput with a closed loop, then sends Poisson arrivals
at `--fraction` of it (latency from each intended send time, so no coordinated omission)
and prints one JSON object: per `--window` seconds the p50/p99 latency, the completed and
failed calls and the server's resident memory (its `process_resident_memory_bytes`).

    python -m benchmarks.soak --seconds 60 --fraction 0.7 > soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc

REPO_ROOT = Path(__file__).resolve().parent.parent
TEXTS = (
    "A library for parsing command line options.",
    "Fonts for the terminal with a clean and readable shape.",
    "A tool to compress files quickly with a small memory footprint.",
    "Utilities to manage disk partitions and file systems from the shell.",
)


def _start_server(log_path: Path, threads: int) -> tuple[subprocess.Popen[bytes], int, int]:
    env = {**os.environ, "SEQ2SEQ_PROVIDERS": '["cpu"]', "SEQ2SEQ_LOG_FORMAT": "text"}
    env["SEQ2SEQ_INTRA_OP_THREADS"] = str(threads)
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--metrics-port", "0", "--http-host", "127.0.0.1", "--http-port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"on 127\.0\.0\.1:(\d+), metrics on [\d.]+:(\d+)", log_path.read_text())
        if found:
            return process, int(found.group(1)), int(found.group(2))
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the server did not start:\n{log_path.read_text()}")


def _rss(metrics_port: int) -> float:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("process_resident_memory_bytes "):
                return float(line.split()[1])
    return float("nan")


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 2) if values else None


async def _saturation(stub: pb_grpc.Seq2SeqStub, seconds: float, concurrency: int) -> float:
    """Completed Translate calls per second with `concurrency` closed-loop clients."""
    done = 0
    stop = time.monotonic() + seconds

    async def client(index: int) -> None:
        nonlocal done
        while time.monotonic() < stop:
            text = TEXTS[(index + done) % len(TEXTS)]
            await stub.Translate(pb.TranslateRequest(text=text, target_language="fr"), timeout=60)
            done += 1

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return done / seconds


async def _soak(args: argparse.Namespace, port: int, metrics_port: int) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.Seq2SeqStub(channel)
        await _saturation(stub, 3.0, args.concurrency)  # warm-up
        saturation = await _saturation(stub, args.saturation_seconds, args.concurrency)
        rate = saturation * args.fraction
        rng = random.Random(args.seed)
        windows: list[dict[str, Any]] = []
        latencies: list[float] = []
        failures: dict[str, int] = {}
        tasks: set[asyncio.Task[None]] = set()

        async def call(intended: float, text: str) -> None:
            try:
                await stub.Translate(
                    pb.TranslateRequest(text=text, target_language="fr"), timeout=30
                )
                latencies.append(time.monotonic() - intended)
            except grpc.aio.AioRpcError as error:
                failures[error.code().name] = failures.get(error.code().name, 0) + 1

        async def window(end: float) -> dict[str, Any]:
            """The figures of the window ending now; starts the next one."""
            figures = {
                "end_s": round(end - start, 1),
                "completed": len(latencies),
                "failed": dict(failures),
                "p50_ms": _ms(latencies, 50),
                "p99_ms": _ms(latencies, 99),
                "rss_mib": round(await asyncio.to_thread(_rss, metrics_port) / 2**20, 1),
            }
            latencies.clear()
            failures.clear()
            return figures

        start = time.monotonic()
        next_send = start
        window_end = start + args.window
        rss_start = await asyncio.to_thread(_rss, metrics_port)
        while next_send < start + args.seconds:
            now = time.monotonic()
            if now < next_send:
                await asyncio.sleep(next_send - now)
            task = asyncio.get_running_loop().create_task(call(next_send, rng.choice(TEXTS)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_send += rng.expovariate(rate)
            if time.monotonic() >= window_end:
                windows.append(await window(window_end))
                window_end += args.window
        await asyncio.gather(*tasks)
        windows.append(await window(time.monotonic()))  # the last one, with the stragglers
        rss_end = await asyncio.to_thread(_rss, metrics_port)
    return {
        "seconds": args.seconds,
        "fraction": args.fraction,
        "saturation_rps": round(saturation, 2),
        "offered_rps": round(rate, 2),
        "rss_start_mib": round(rss_start / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
        "windows": windows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="soak length")
    parser.add_argument("--fraction", type=float, default=0.7, help="of saturation throughput")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per reported window")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    parser.add_argument("--saturation-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        process, port, metrics_port = _start_server(Path(folder) / "server.log", args.threads)
        try:
            report = asyncio.run(_soak(args, port, metrics_port))
        finally:
            process.terminate()
            process.wait(timeout=60)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
