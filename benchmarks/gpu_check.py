"""The GPU check: one script, one call, results as JSON in a folder.

    python -m benchmarks.gpu_check OUT_DIR [--models models] [--seconds-budget 300]

Records: onnxruntime's providers; per bundle, whether a CUDA session is really created;
CPU vs CUDA parity of log-probabilities and greedy outputs (with TF32 on and off); offline
engine throughput by batch size on CPU and on CUDA with IO binding on and off; served
throughput on CUDA through the real gRPC server.
Everything that could not be measured is written down with the reason, never skipped
silently. Also runs without a GPU (every CUDA figure then says why it is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import onnxruntime as ort

from benchmarks.offline import heldout_sources, offline_throughput
from service.engine.offline import Seq2SeqEngine
from service.engine.repository import LoadedBundle, bundle_dirs, load_bundle
from service.engine.runtime import RuntimeOptions

DATASETS = {"translate": None, "summarize": "summarize", "answer": "answer"}
BATCH_SIZES = (1, 8, 32, 128)


def _dataset(bundle: LoadedBundle) -> str:
    manifest = bundle.manifest
    if manifest.task == "translate" and manifest.languages is not None:
        return f"translate-{manifest.languages.source}-{manifest.languages.target}"
    return manifest.task


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "onnxruntime": ort.__version__,
        "available_providers": ort.get_available_providers(),
    }
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        info["nvidia_smi"] = f"unavailable: {exc}"
    return info


def greedy_decode(
    bundle: LoadedBundle, sources: list[str]
) -> tuple[list[tuple[int, ...]], list[tuple[float, ...]]]:
    """Greedy ids and each chosen token's log-prob, through the offline API."""
    limit = bundle.manifest.max_source_length
    rows = [bundle.tokenizer.encode(s, max_tokens=10**6, field="text").ids for s in sources]
    rows = [r if len(r) <= limit else r[: limit - 1] + r[-1:] for r in rows]
    engine = Seq2SeqEngine.from_bundle(bundle, max_batch_size=len(rows))
    results = engine.generate_batch(rows, return_scores=True)
    return [r.best.token_ids for r in results], [r.best.token_scores for r in results]


def parity(cpu: LoadedBundle, cuda: LoadedBundle, sources: list[str]) -> dict[str, Any]:
    cpu_ids, cpu_scores = greedy_decode(cpu, sources)
    gpu_ids, gpu_scores = greedy_decode(cuda, sources)
    same = sum(a == b for a, b in zip(cpu_ids, gpu_ids, strict=True))
    # Token log-probs compared where both chose the same first tokens.
    diffs = [
        abs(a - b)
        for ids_a, ids_b, sa, sb in zip(cpu_ids, gpu_ids, cpu_scores, gpu_scores, strict=True)
        for x, y, a, b in zip(ids_a, ids_b, sa, sb, strict=False)
        if x == y
    ]
    return {
        "examples": len(sources),
        "max_abs_token_logprob_diff": float(max(diffs, default=0.0)),
        "identical_greedy_outputs": same,
    }


def throughput_table(bundle: LoadedBundle, sources: list[str], requests: int) -> list[dict]:
    rows = []
    for batch in BATCH_SIZES:
        offline_throughput(bundle, sources, batch_size=batch, requests=min(requests, 2 * batch))
        rows.append(
            offline_throughput(bundle, sources, batch_size=batch, requests=requests).as_dict()
        )
    return rows


async def served_throughput(models: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    """Closed loop: `concurrency` clients call Summarize/Translate/Answer for `seconds`."""
    import grpc

    from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
    from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
    from service.server.server import Seq2SeqServer
    from service.settings import Settings

    server = Seq2SeqServer(
        Settings(
            model_repository=models,
            host="127.0.0.1",
            port=0,
            metrics_host="127.0.0.1",
            metrics_port=0,
            http_host="127.0.0.1",
            http_port=0,
            providers=("cuda", "cpu"),
            max_batch_size=128,
        )
    )
    await server.start()
    texts = heldout_sources("summarize", "summarize")
    done = 0
    tokens = 0
    errors: dict[str, int] = {}
    stop_at = time.perf_counter() + seconds

    async def client(stub: pb_grpc.Seq2SeqStub, offset: int) -> None:
        nonlocal done, tokens
        i = offset
        while time.perf_counter() < stop_at:
            try:
                response = await stub.Summarize(
                    pb.SummarizeRequest(text=texts[i % len(texts)]), timeout=30
                )
                done += 1
                tokens += len(response.hypotheses[0].target_tokens)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
            i += 1

    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.Seq2SeqStub(channel)
        started = time.perf_counter()
        await asyncio.gather(*(client(stub, k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    provider = server.plane.models.all()[0].bundle.runtime.provider
    await server.drain_and_stop(grace=2.0)
    return {
        "rpc": "Summarize",
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(done / elapsed, 1),
        "tokens_per_second": round(tokens / elapsed, 1),
        "errors": errors,
        "provider": provider,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--requests", type=int, default=256, help="requests per throughput run")
    parser.add_argument("--served-seconds", type=float, default=20.0)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        ort.preload_dlls()  # CUDA and cuDNN from the nvidia-* wheels, where they are installed
    started = time.perf_counter()
    report: dict[str, Any] = {"environment": environment(), "bundles": {}}
    print(json.dumps(report["environment"], indent=1), flush=True)
    cpu_options = RuntimeOptions(providers=("cpu",))
    cuda_options = RuntimeOptions(providers=("cuda", "cpu"))
    for bundle_dir in bundle_dirs(args.models):
        entry: dict[str, Any] = {}
        report["bundles"][str(bundle_dir)] = entry
        try:
            cpu = load_bundle(bundle_dir, cpu_options)
            t0 = time.perf_counter()
            cuda = load_bundle(bundle_dir, cuda_options)
            entry["cuda_session_seconds"] = round(time.perf_counter() - t0, 3)
            entry["provider_when_cuda_preferred"] = cuda.runtime.provider
            sources = heldout_sources(cpu.manifest.task, _dataset(cpu))
            entry["parity_cpu_vs_cuda"] = parity(cpu, cuda, sources)
            entry["offline_cpu"] = throughput_table(cpu, sources, args.requests)
            if cuda.runtime.provider == "CUDAExecutionProvider":
                entry["io_binding"] = cuda.runtime.io_binding
                entry["offline_cuda"] = throughput_table(cuda, sources, args.requests)
                unbound = load_bundle(bundle_dir, replace(cuda_options, io_binding=False))
                entry["offline_cuda_no_io_binding"] = throughput_table(
                    unbound, sources, args.requests
                )
                strict = load_bundle(bundle_dir, replace(cuda_options, cuda_use_tf32=False))
                entry["parity_cpu_vs_cuda_no_tf32"] = parity(cpu, strict, sources)
            else:
                entry["offline_cuda"] = f"not measured: session runs on {cuda.runtime.provider}"
        except Exception as exc:  # record and go on to the next bundle
            entry["error"] = f"{exc}\n{traceback.format_exc()}"
        print(bundle_dir, json.dumps(entry, indent=1), flush=True)
        (args.out_dir / "gpu_check.json").write_text(json.dumps(report, indent=2))
    try:
        report["served"] = asyncio.run(
            served_throughput(args.models, concurrency=64, seconds=args.served_seconds)
        )
    except Exception as exc:
        report["served"] = f"error: {exc}\n{traceback.format_exc()}"
    print("served", json.dumps(report["served"], indent=1), flush=True)
    report["fp16_vs_fp32"] = "not measured: no fp16 bundles exist yet (issue 3)"
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    (args.out_dir / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out_dir / 'gpu_check.json'} in {report['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
