"""One offline measurement inside one checkout, for `benchmarks.compare_commits`.

Run as `python -c <this file's text> SPEC_JSON` with cwd and PYTHONPATH set to the checkout
being measured, so `service` and `benchmarks` are that checkout's own (this file imports
nothing but the standard library at the top). Prints one JSON line: the figures of
`benchmarks.offline.ThroughputResult.as_dict()`, the process's CPU seconds over the timed run
(waiting for a core on a shared machine does not count there, so tokens per CPU second
drifts less than tokens per wall second), and where `service` was imported from.

The commit before issue 13 (cfbe459) had no offline API and its `offline_throughput` was
greedy only; for a beam it is driven here the way that function drove its engine, with the
beam in its `DecodeParams`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any


def _load(bundle_dir: str, threads: int) -> Any:
    from service.engine.repository import load_bundle
    from service.engine.runtime import RuntimeOptions

    return load_bundle(
        Path(bundle_dir), RuntimeOptions(providers=("cpu",), intra_op_threads=threads)
    )


def _has_offline_api() -> bool:
    return importlib.util.find_spec("service.engine.offline") is not None


def _old_beam(
    bundle: Any, sources: list[str], *, batch_size: int, requests: int, beam_size: int
) -> Any:
    """cfbe459's offline_throughput loop (Scheduler + ModelEngine stepped synchronously),
    with `beam_size` in DecodeParams."""
    import numpy as np
    from service.engine.engine import ModelEngine
    from service.engine.scheduler import Scheduler, SchedulerConfig

    from benchmarks.offline import CollectingListener, NullObserver, ThroughputResult
    from service.engine.requests import DecodeParams, Request

    scheduler = Scheduler(
        SchedulerConfig(max_batch_size=batch_size, max_queue_size=requests, max_queue_delay=0.0)
    )
    engine = ModelEngine(bundle.runtime, scheduler, NullObserver())
    limit = bundle.manifest.max_source_length
    encoded = [
        np.asarray(bundle.tokenizer.encode(s, max_tokens=limit, field="text").ids, dtype=np.int64)
        for s in sources
    ]
    params = DecodeParams(max_output_tokens=bundle.manifest.max_target_length, beam_size=beam_size)
    listeners = [CollectingListener() for _ in range(requests)]
    started = time.perf_counter()
    for i, listener in enumerate(listeners):
        scheduler.submit(
            Request(
                request_id=str(i),
                source_ids=encoded[i % len(encoded)],
                params=params,
                listener=listener,
            )
        )
    while scheduler.queue_depth or engine.num_running:
        engine.step()
    seconds = time.perf_counter() - started
    failed = [listener.error for listener in listeners if listener.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} requests failed: {failed[0]}")
    tokens = sum(len(listener.output.token_ids) for listener in listeners if listener.output)
    return ThroughputResult(batch_size, requests, seconds, tokens)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then one timed run of `requests` sources at `batch_size` and `beam_size`."""
    import service
    from benchmarks.offline import offline_throughput

    bundle = _load(spec["bundle"], spec["threads"])
    sources = spec["sources"]
    batch_size, beam_size = spec["batch_size"], spec["beam_size"]
    offline_api = _has_offline_api()

    def run(requests: int) -> Any:
        if beam_size == 1:  # both trees' offline_throughput decode greedily by default
            return offline_throughput(bundle, sources, batch_size=batch_size, requests=requests)
        if offline_api:
            return offline_throughput(
                bundle, sources, batch_size=batch_size, requests=requests, beam_size=beam_size
            )
        return _old_beam(
            bundle, sources, batch_size=batch_size, requests=requests, beam_size=beam_size
        )

    run(spec["warmup_requests"])
    cpu = time.process_time()  # every thread of this process: onnxruntime's pool included
    result = run(spec["requests"]).as_dict()
    cpu = time.process_time() - cpu
    return {
        **result,
        "cpu_seconds": round(cpu, 4),
        "tokens_per_cpu_second": round(result["output_tokens"] / cpu, 1) if cpu else None,
        "beam_size": beam_size,
        "driver": "offline API" if offline_api else "ModelEngine + Scheduler",
        "service_package": str(Path(service.__file__).resolve().parent),
    }


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))), flush=True)
