"""The benchmark suite: ratios measured side by side in one run.

    python -m benchmarks.suite OUT_DIR [--models models] [--seconds 20] [--requests 2000]

  a. onnxruntime vs PyTorch eager greedy decoding on the same weights (batch 1 and 32)
  b. served throughput at saturation vs the offline engine at the same max batch size
  c. 32 concurrent clients: a batching server vs the same server with max_batch_size=1
  d. continuous vs static batching on mixed output lengths
  e. p99 latency under Poisson load at half of saturation vs idle p50
  f. saturation sweep: throughput and p50/p99 at fractions of b's closed-loop saturation
     (Poisson arrivals); `--sweep-only` runs just the saturation measurement and f
  g. int8 and fp16 vs fp32: offline engine throughput of variant bundles beside their fp32
     source, with each variant's measured quality change (`--variants DIR ...`, bundles made
     by `seq2seq-export variant`; benchmarks/precision.py)

b-f run the real gRPC server on a loopback port over the committed translate-en-fr bundle
and the held-out inputs; the clients are the load tester's (`seq2seq_client.loadtest`, the
`seq2seq-load` runner, through `benchmarks.load`) in a separate spawned process with its own
event loop.
Every served run reports what the engine measured itself (seq2seq_compute_seconds and
seq2seq_batch_size), so a missed target can be explained by numbers. Writes
OUT_DIR/benchmarks.json and prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.load import LoadSpec, run_load, translate_mix
from benchmarks.offline import heldout_sources, offline_throughput
from benchmarks.precision import compare_precisions
from benchmarks.precision import table as precision_table
from benchmarks.report import environment, print_table, write_json
from model_export.config import ModelConfig
from seq2seq_client.loadtest import run_report
from seq2seq_client.loadtest.runner import LoadConfig
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.runtime import RuntimeOptions
from service.server.server import Seq2SeqServer
from service.settings import DEFAULT_MODEL_REPOSITORY, Settings

MODEL = "translate-en-fr"
DATASET = "translate-en-fr"


@dataclass(frozen=True)
class Sizes:
    """How long each measurement runs; the smoke tests shrink these to seconds."""

    seconds: float = 20.0  # bound on every measured window
    requests: int = 2000  # bound on measured requests per closed-loop run
    warmup_requests: int = 64  # per served run, not measured
    offline_requests: int = 1024  # requests in the offline engine run
    idle_requests: int = 200  # one-at-a-time requests for the idle p50
    threads: int = 1  # onnxruntime intra-op threads, served and offline alike
    max_batch_size: int = 32
    saturation_concurrency: int = 64  # closed-loop clients that keep the batch full
    batching_concurrency: int = 32  # c and d
    short_tokens: int = 2  # d: max_output_tokens of the short requests
    long_every: int = 4  # d: every Nth request is uncapped (the model's own length)
    sweep_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25)  # f: x saturation
    deadline: float = 60.0  # seconds per call
    engine_mode: str = "process"  # served runs: "process" (engine processes) or "thread"


def fitting_sources(bundle: LoadedBundle, sources: list[str]) -> list[str]:
    """Held-out sources within the model's source limit (the server refuses longer ones)."""
    limit = bundle.manifest.max_source_length
    return [
        s
        for s in sources
        if len(bundle.tokenizer.encode(s, max_tokens=10**6, field="text").ids) <= limit
    ]


def _sample(registry: Any, name: str, stage: str) -> float:
    return registry.get_sample_value(name, {"model": MODEL, "stage": stage}) or 0.0


def engine_counters(server: Seq2SeqServer) -> dict[str, float]:
    """Cumulative engine figures from the server's own metrics registry."""
    registry = server.metrics.registry
    return {
        "decoder_seconds": _sample(registry, "seq2seq_compute_seconds_sum", "decoder"),
        "encoder_seconds": _sample(registry, "seq2seq_compute_seconds_sum", "encoder"),
        "decoder_steps": _sample(registry, "seq2seq_compute_seconds_count", "decoder"),
        "decoder_rows": _sample(registry, "seq2seq_batch_size_sum", "decoder"),
        "encoder_runs": _sample(registry, "seq2seq_compute_seconds_count", "encoder"),
    }


def engine_summary(before: dict[str, float], after: dict[str, float], wall: float) -> dict:
    """What the engine did during one measured window: onnxruntime's share of the wall time
    and the mean decode batch; the rest of the engine thread's time is Python and waiting."""
    delta = {k: after[k] - before[k] for k in before}
    steps = max(delta["decoder_steps"], 1.0)
    onnx = delta["decoder_seconds"] + delta["encoder_seconds"]
    return {
        "decoder_steps": int(delta["decoder_steps"]),
        "mean_decode_batch": round(delta["decoder_rows"] / steps, 2),
        "encoder_runs": int(delta["encoder_runs"]),
        "onnxruntime_seconds": round(onnx, 3),
        "onnxruntime_share_of_wall": round(onnx / wall, 3) if wall > 0 else None,
        "decoder_ms_per_step": round(1000 * delta["decoder_seconds"] / steps, 4),
        "wall_ms_per_step": round(1000 * wall / steps, 4),
    }


class TimedRuntime:
    """Wraps a bundle's OnnxSeq2Seq and adds up the wall time of its encoder and decoder
    runs, so the offline engine reports the same split as the served one's metrics."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self.manifest = runtime.manifest
        self.seconds = {"encoder": 0.0, "decoder": 0.0}
        self.steps = 0
        self.rows = 0

    def __getattr__(self, name: str) -> Any:  # everything else: the wrapped runtime's own
        return getattr(self._runtime, name)

    def encode(self, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._runtime.encode(*args)
        finally:
            self.seconds["encoder"] += time.perf_counter() - started

    def step(self, prev_ids: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._runtime.step(prev_ids, *args)
        finally:
            self.seconds["decoder"] += time.perf_counter() - started
            self.steps += 1
            self.rows += len(prev_ids)


def offline_with_timers(bundle: LoadedBundle, sources: list[str], **sizes: int) -> dict:
    """benchmarks.offline.offline_throughput, plus onnxruntime's share of its wall time."""
    timed = TimedRuntime(bundle.runtime)
    result = offline_throughput(replace(bundle, runtime=timed), sources, **sizes)  # type: ignore[arg-type]
    steps = max(timed.steps, 1)
    onnx = timed.seconds["encoder"] + timed.seconds["decoder"]
    return {
        **result.as_dict(),
        "engine": {
            "decoder_steps": timed.steps,
            "mean_decode_batch": round(timed.rows / steps, 2),
            "onnxruntime_seconds": round(onnx, 3),
            "onnxruntime_share_of_wall": round(onnx / result.seconds, 3),
            "decoder_ms_per_step": round(1000 * timed.seconds["decoder"] / steps, 4),
            "wall_ms_per_step": round(1000 * result.seconds / steps, 4),
        },
    }


def stat_cpu_seconds(stat: Path) -> float:
    """utime + stime of a /proc stat file, in seconds (0 when it is gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(server: Seq2SeqServer) -> dict[str, float]:
    """CPU seconds so far of the server's threads (thread_cpu_seconds) and of its engine
    processes (every thread of them: IPC, decoding, onnxruntime's pools)."""
    pids = server.backend.engine_pids().values()
    engines = sum(stat_cpu_seconds(Path(f"/proc/{pid}/stat")) for pid in pids)
    return {**thread_cpu_seconds(), "engine_process": engines}


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of this process's threads so far, grouped: the engine threads (decoding,
    onnxruntime included when intra_op_threads is 1), the event loop (gRPC handlers, Python
    side), and every other thread (gRPC's C-core pollers, onnxruntime's pools). Linux only."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    main_id = threading.main_thread().native_id
    totals = {"engine_thread": 0.0, "event_loop_thread": 0.0, "other_threads": 0.0}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for task in tasks:
        try:
            fields = Path(f"/proc/self/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        tid = int(task)
        if tid == main_id:
            totals["event_loop_thread"] += seconds
        elif names.get(tid, "").startswith("engine-"):
            totals["engine_thread"] += seconds
        else:
            totals["other_threads"] += seconds
    return totals


class Bench:
    """One model repository, one client process pool, and the server settings all runs share."""

    def __init__(self, models: Path, pool: Executor, sizes: Sizes) -> None:
        self.models = models
        self.pool = pool
        self.sizes = sizes
        self.bundle = load_bundle(
            models / MODEL / "1", RuntimeOptions(providers=("cpu",), intra_op_threads=sizes.threads)
        )
        self.sources = fitting_sources(self.bundle, heldout_sources("translate", DATASET))

    @asynccontextmanager
    async def serving(self, **overrides: Any) -> AsyncIterator[tuple[Seq2SeqServer, str]]:
        """A real server on 127.0.0.1:0 over this repository (one model only)."""
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp)
            (repo / MODEL).symlink_to(self.models.resolve() / MODEL, target_is_directory=True)
            fields: dict[str, Any] = {
                "model_repository": repo,
                "host": "127.0.0.1",
                "port": 0,
                "metrics_host": "127.0.0.1",
                "metrics_port": 0,
                "providers": ("cpu",),
                "intra_op_threads": self.sizes.threads,
                "max_batch_size": self.sizes.max_batch_size,
                "max_queue_size": 1024,
                "log_level": "WARNING",
                "engine_mode": self.sizes.engine_mode,
                "http_enabled": False,  # gRPC is measured; the HTTP port may be taken
                **overrides,
            }
            server = Seq2SeqServer(Settings(**fields))
            await server.start()
            try:
                yield server, f"127.0.0.1:{server.port}"
            finally:
                await server.drain_and_stop(grace=5.0)

    def spec(
        self, target: str, items: tuple[tuple[str, int], ...] | None = None, **fields: Any
    ) -> LoadSpec:
        """Closed loop over the held-out sources unless `fields` say otherwise."""
        config = LoadConfig(
            target=target,
            mode="closed",
            duration=self.sizes.seconds,
            max_requests=self.sizes.requests,
            warmup_requests=self.sizes.warmup_requests,
            deadline=self.sizes.deadline,
        )
        mix = translate_mix(items or tuple((text, 0) for text in self.sources))
        return LoadSpec(replace(config, **fields), mix)

    def poisson(self, target: str, rate: float, warmup_requests: int) -> LoadSpec:
        """Poisson arrivals at `rate` for `seconds` (the count bound leaves room for bursts)."""
        return self.spec(
            target,
            mode="poisson",
            rate=rate,
            max_requests=max(1, int(rate * self.sizes.seconds) * 2),
            warmup_requests=warmup_requests,
        )

    async def load(self, server: Seq2SeqServer, spec: LoadSpec) -> dict[str, Any]:
        """Run one load in the client process; attach what the engine measured meanwhile."""
        loop = asyncio.get_running_loop()
        config = spec.config
        if config.warmup_requests:  # warm the server outside the measured window
            warmup = replace(
                config, mode="closed", max_requests=config.warmup_requests, warmup_requests=0
            )
            await loop.run_in_executor(self.pool, run_report, warmup, spec.mix)
        measured = replace(spec, config=replace(config, warmup_requests=0))
        before, cpu_before = engine_counters(server), server_cpu_seconds(server)
        started = time.perf_counter()
        result = await loop.run_in_executor(self.pool, run_load, measured)
        wall = time.perf_counter() - started
        result["engine"] = engine_summary(before, engine_counters(server), wall)
        cpu_after = server_cpu_seconds(server)
        result["server_cpu_seconds"] = {
            name: round(cpu_after[name] - cpu_before.get(name, 0.0), 3) for name in cpu_after
        }
        return result

    async def served_vs_offline(self) -> dict[str, Any]:
        s = self.sizes
        offline_throughput(self.bundle, self.sources, batch_size=s.max_batch_size, requests=64)
        offline = offline_with_timers(
            self.bundle, self.sources, batch_size=s.max_batch_size, requests=s.offline_requests
        )
        async with self.serving() as (server, target):
            served = await self.load(
                server, self.spec(target, concurrency=s.saturation_concurrency)
            )
        return {
            "offline": offline,
            "served": served,
            "ratio": _ratio(served["tokens_per_second"], offline["tokens_per_second"]),
            "ratio_of": "served / offline output tokens per second",
            "target": ">= 0.9",
        }

    async def batched_vs_unbatched(self) -> dict[str, Any]:
        s = self.sizes
        runs = {}
        for name, batch in (("batched", s.max_batch_size), ("unbatched", 1)):
            async with self.serving(max_batch_size=batch) as (server, target):
                runs[name] = await self.load(
                    server, self.spec(target, concurrency=s.batching_concurrency)
                )
                runs[name]["max_batch_size"] = batch
        return {
            **runs,
            "ratio": _ratio(
                runs["batched"]["requests_per_second"], runs["unbatched"]["requests_per_second"]
            ),
            "ratio_of": f"requests per second, {s.batching_concurrency} closed-loop clients, "
            f"max_batch_size {s.max_batch_size} / 1",
            "target": ">= 5",
        }

    def mixed_items(self) -> tuple[tuple[str, int], ...]:
        """Every `long_every`-th request uncapped, the rest capped at `short_tokens`."""
        s = self.sizes
        return tuple(
            (text, 0 if i % s.long_every == 0 else s.short_tokens)
            for i, text in enumerate(self.sources * s.long_every)
        )

    async def continuous_vs_static(self) -> dict[str, Any]:
        s = self.sizes
        runs = {}
        for name, continuous in (("continuous", True), ("static", False)):
            async with self.serving(continuous_batching=continuous) as (server, target):
                spec = self.spec(
                    target, concurrency=s.batching_concurrency, items=self.mixed_items()
                )
                runs[name] = await self.load(server, spec)
        return {
            **runs,
            "mix": f"1 in {s.long_every} requests uncapped (the model's own length, at most "
            f"{self.bundle.manifest.max_target_length}), the rest max_output_tokens="
            f"{s.short_tokens}",
            "ratio": _ratio(
                runs["continuous"]["requests_per_second"], runs["static"]["requests_per_second"]
            ),
            "ratio_of": "requests per second, continuous / static, same requests",
            "target": ">= 1.5",
        }

    async def latency_at_half_saturation(self, saturation_rps: float) -> dict[str, Any]:
        s = self.sizes
        rate = 0.5 * saturation_rps
        async with self.serving() as (server, target):
            idle = await self.load(
                server, self.spec(target, concurrency=1, max_requests=s.idle_requests)
            )
            loaded = await self.load(server, self.poisson(target, rate, warmup_requests=0))
        return {
            "saturation_requests_per_second": saturation_rps,
            "idle": idle,
            "half_saturation": loaded,
            "ratio": _ratio(loaded["p99_ms"], idle["p50_ms"]),
            "ratio_of": "p99 at 50% of saturation (Poisson, from intended send time) / idle p50",
            "target": "<= 3",
        }

    async def saturation_sweep(self, saturation_rps: float) -> dict[str, Any]:
        """f: Poisson arrivals at fractions of the closed-loop saturation, one server, in order;
        throughput and latency (from the intended send time) at each offered load."""
        s = self.sizes
        points = []
        async with self.serving() as (server, target):
            for n, fraction in enumerate(s.sweep_fractions):
                rate = fraction * saturation_rps
                warmup = s.warmup_requests if n == 0 else 0  # a fresh server: warm it once
                run = await self.load(server, self.poisson(target, rate, warmup_requests=warmup))
                points.append(
                    {
                        "fraction": fraction,
                        "offered_rps": round(rate, 1),
                        "throughput_rps": run["requests_per_second"],
                        "p50_ms": run["p50_ms"],
                        "p99_ms": run["p99_ms"],
                        "errors": sum(run["errors"].values()),
                        "dropped": run["dropped"],
                        "run": run,
                    }
                )
        return {
            "saturation_requests_per_second": saturation_rps,
            "saturation_from": f"closed loop, {s.saturation_concurrency} clients (b)",
            "points": points,
        }

    async def saturation(self) -> dict[str, Any]:
        """b's served run alone: closed-loop saturation throughput."""
        async with self.serving() as (server, target):
            return await self.load(
                server, self.spec(target, concurrency=self.sizes.saturation_concurrency)
            )


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def _met(ratio: float | None, target: str) -> str:
    if ratio is None:
        return "not measured"
    op, value = target.split()
    ok = ratio >= float(value) if op == ">=" else ratio <= float(value)
    return "met" if ok else "MISSED"


async def run_served(bench: Bench) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results["b_served_vs_offline"] = await bench.served_vs_offline()
    results["c_batched_vs_unbatched"] = await bench.batched_vs_unbatched()
    results["d_continuous_vs_static"] = await bench.continuous_vs_static()
    saturation = results["b_served_vs_offline"]["served"]["requests_per_second"]
    results["e_latency_at_half_saturation"] = await bench.latency_at_half_saturation(saturation)
    results["f_saturation_sweep"] = await bench.saturation_sweep(saturation)
    return results


async def run_sweep_only(bench: Bench) -> dict[str, Any]:
    saturated = await bench.saturation()
    sweep = await bench.saturation_sweep(saturated["requests_per_second"])
    return {"saturation": saturated, "f_saturation_sweep": sweep}


SWEEP_HEADER = ["x saturation", "offered req/s", "req/s", "p50 ms", "p99 ms", "errors", "dropped"]


def sweep_rows(sweep: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            p["fraction"],
            p["offered_rps"],
            p["throughput_rps"],
            p["p50_ms"],
            p["p99_ms"],
            p["errors"],
            p["dropped"],
        ]
        for p in sweep["points"]
    ]


def run_suite(
    out_dir: Path,
    *,
    models: Path = DEFAULT_MODEL_REPOSITORY,
    sizes: Sizes | None = None,
    ort_steps: int = 32,
    ort_repeats: int = 20,
    ort_config: ModelConfig | None = None,
    variants: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Run a-g, print the tables, write OUT_DIR/benchmarks.json; returns the report."""
    from benchmarks.ort_vs_torch import ort_vs_torch  # imports torch: only when asked

    sizes = sizes or Sizes()
    started = time.perf_counter()
    report: dict[str, Any] = {"environment": environment(), "sizes": sizes.__dict__}
    ort = {
        f"threads_{threads}": ort_vs_torch(
            steps=ort_steps, repeats=ort_repeats, threads=threads, config=ort_config
        )
        for threads in (1, 2)
    }
    report["a_ort_vs_torch"] = {**ort, "targets": {"batch 1": ">= 3", "batch 32": ">= 1.5"}}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        bench = Bench(models, pool, sizes)
        report.update(asyncio.run(run_served(bench)))
    if variants:
        report["g_precision"] = compare_precisions(
            [models / MODEL / "1", *variants],
            batch_size=sizes.max_batch_size,
            requests=sizes.offline_requests,
            threads=sizes.threads,
        )
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["summary"] = summary_rows(report)
    print_table(["benchmark", "ratio", "target", "result"], report["summary"])
    print_table(SWEEP_HEADER, sweep_rows(report["f_saturation_sweep"]))
    if variants:
        print(precision_table(report["g_precision"]))
    write_json(out_dir / "benchmarks.json", report)
    return report


def run_sweep(
    out_dir: Path, *, models: Path = DEFAULT_MODEL_REPOSITORY, sizes: Sizes | None = None
) -> dict[str, Any]:
    """Only f (with its own saturation measurement); writes OUT_DIR/saturation_sweep.json."""
    sizes = sizes or Sizes()
    started = time.perf_counter()
    report: dict[str, Any] = {"environment": environment(), "sizes": sizes.__dict__}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        report.update(asyncio.run(run_sweep_only(Bench(models, pool, sizes))))
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"saturation: {report['saturation']['requests_per_second']} req/s")
    print_table(SWEEP_HEADER, sweep_rows(report["f_saturation_sweep"]))
    write_json(out_dir / "saturation_sweep.json", report)
    return report


def summary_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for key, ort in report["a_ort_vs_torch"].items():
        if not key.startswith("threads_"):
            continue
        for row in ort["rows"]:
            target = {1: ">= 3", 32: ">= 1.5"}.get(row["batch_size"])
            if target is not None:
                label = f"a. onnxruntime / torch eager, batch {row['batch_size']}, {key}"
                rows.append([label.replace("_", " "), row["speedup"], target])
    for key, label in (
        ("b_served_vs_offline", "b. served / offline throughput"),
        ("c_batched_vs_unbatched", "c. batched / unbatched server, 32 clients"),
        ("d_continuous_vs_static", "d. continuous / static batching, mixed lengths"),
        ("e_latency_at_half_saturation", "e. p99 at 50% saturation / idle p50"),
    ):
        rows.append([label, report[key]["ratio"], report[key]["target"]])
    return [[*row, _met(row[1], row[2])] for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--seconds", type=float, default=Sizes.seconds)
    parser.add_argument("--requests", type=int, default=Sizes.requests)
    parser.add_argument("--offline-requests", type=int, default=Sizes.offline_requests)
    parser.add_argument("--idle-requests", type=int, default=Sizes.idle_requests)
    parser.add_argument("--threads", type=int, default=Sizes.threads)
    parser.add_argument("--short-tokens", type=int, default=Sizes.short_tokens)
    parser.add_argument("--long-every", type=int, default=Sizes.long_every)
    parser.add_argument(
        "--sweep",
        type=lambda text: tuple(float(x) for x in text.split(",")),
        default=Sizes.sweep_fractions,
        help="f: offered loads as fractions of saturation, comma-separated",
    )
    parser.add_argument("--sweep-only", action="store_true", help="run only f (and saturation)")
    parser.add_argument(
        "--engine-mode",
        choices=["process", "thread"],
        default=Sizes.engine_mode,
        help="served runs: engine-core processes (the default) or engine threads",
    )
    parser.add_argument(
        "--variants",
        type=Path,
        nargs="*",
        default=(),
        help="g: fp16/int8 variant bundle folders of models/translate-en-fr/1",
    )
    args = parser.parse_args()
    sizes = Sizes(
        seconds=args.seconds,
        requests=args.requests,
        offline_requests=args.offline_requests,
        idle_requests=args.idle_requests,
        threads=args.threads,
        short_tokens=args.short_tokens,
        long_every=args.long_every,
        sweep_fractions=args.sweep,
        engine_mode=args.engine_mode,
    )
    if args.sweep_only:
        run_sweep(args.out_dir, models=args.models, sizes=sizes)
    else:
        run_suite(args.out_dir, models=args.models, sizes=sizes, variants=tuple(args.variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
