"""Every metric the server exports, in one registry per server instance.

gRPC RED metrics follow go-grpc-prometheus names; the engine's own are prefixed
`seq2seq_`. Base units (seconds), `_total` counters, bounded labels (model names come
from the repository, never from requests).
"""

from __future__ import annotations

import contextlib

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import REGISTRY
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from service.engine.requests import RequestStatus
from service.engine_process.backend import ServedBundle
from service.metrics_merge import RemoteFrontends, merged_registry

# Buckets fit what was measured on 2 CPU cores: one decoder step takes 0.1-1 ms and an
# encoder run a few ms (COMPUTE); an RPC takes 10 ms to 2 s (RPC); queue time is 0 while
# the model keeps up and grows towards seconds under overload (QUEUE).
COMPUTE_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
RPC_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.35,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
    30.0,
)
QUEUE_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.remote = RemoteFrontends()  # follower front ends' figures (frontend_processes)
        if self.registry is not REGISTRY:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        grpc_labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.grpc_started = Counter(
            "grpc_server_started_total",
            "RPCs started on the server.",
            grpc_labels,
            registry=self.registry,
        )
        self.grpc_handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            [*grpc_labels, "grpc_code"],
            registry=self.registry,
        )
        self.grpc_handling = Histogram(
            "grpc_server_handling_seconds",
            "RPC latency from start to status, in seconds.",
            grpc_labels,
            buckets=RPC_BUCKETS,
            registry=self.registry,
        )
        # Every front end (gRPC, HTTP, LibreTranslate's API) in one family, by protocol.
        self.requests = Counter(
            "seq2seq_requests_total",
            "Requests completed by any front end, by protocol, method and status.",
            ["protocol", "method", "code"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "seq2seq_request_seconds",
            "Request latency from arrival to response, by protocol and method, in seconds.",
            ["protocol", "method"],
            buckets=RPC_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "seq2seq_queue_seconds",
            "Time from arrival to joining a decode batch.",
            ["model"],
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "seq2seq_batch_size",
            "Sequences per run, by stage (encoder, decoder).",
            ["model", "stage"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.compute_seconds = Histogram(
            "seq2seq_compute_seconds",
            "onnxruntime wall time per run, by stage.",
            ["model", "stage"],
            buckets=COMPUTE_BUCKETS,
            registry=self.registry,
        )
        self.input_tokens = Counter(
            "seq2seq_input_tokens_total",
            "Source tokens encoded.",
            ["model"],
            registry=self.registry,
        )
        self.output_tokens = Counter(
            "seq2seq_output_tokens_total",
            "Tokens generated.",
            ["model"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "seq2seq_queue_depth",
            "Requests waiting to join a batch.",
            ["model", "version"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "seq2seq_inflight_requests",
            "Requests in the running decode batch.",
            ["model", "version"],
            registry=self.registry,
        )
        self.finished = Counter(
            "seq2seq_requests_finished_total",
            "Requests that left the engine, by status.",
            ["model", "status"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "seq2seq_requests_rejected_total",
            "Requests refused before decoding, by reason (invalid_argument, not_found, "
            "overloaded, expired, unavailable).",
            ["reason"],
            registry=self.registry,
        )
        self.model_failures = Counter(
            "seq2seq_model_failures_total",
            "Batches whose model run raised.",
            ["model"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "seq2seq_model_info",
            "1 for every served model version, with its provider.",
            ["model", "version", "task", "provider", "precision"],
            registry=self.registry,
        )
        self.bundles_refused = Gauge(
            "seq2seq_bundles_refused",
            "Bundles in the repository that failed their checks.",
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "seq2seq_models_loaded",
            "Model versions being served.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "seq2seq_reload_total",
            "Repository changes applied, by result (added, replaced, removed, refused).",
            ["result"],
            registry=self.registry,
        )
        for result in ("added", "replaced", "removed", "refused"):
            self.reloads.labels(result)
        self.engine_up_gauge = Gauge(
            "seq2seq_engine_up",
            "1 while an engine-core process serves its model group, 0 while it restarts.",
            ["group"],
            registry=self.registry,
        )
        self.engine_restarts = Counter(
            "seq2seq_engine_restarts_total",
            "Engine-core processes started again after one died (exited) or stopped "
            "answering (hung), or after a failed start (start_failed).",
            ["group", "reason"],
            registry=self.registry,
        )
        self.engine_heartbeat_seconds = Gauge(
            "seq2seq_engine_heartbeat_seconds",
            "Round trip of the last heartbeat to an engine-core process.",
            ["group"],
            registry=self.registry,
        )
        self.ipc_dropped_total = Counter(
            "seq2seq_ipc_dropped_total",
            "Messages between front end and engine process that did not decode, by the side "
            "that dropped them (frontend, engine).",
            ["side"],
            registry=self.registry,
        )
        for side in ("frontend", "engine"):
            self.ipc_dropped_total.labels(side)

    @staticmethod
    def _info_labels(bundle: ServedBundle) -> tuple[str, str, str, str, str]:
        manifest = bundle.manifest
        return (
            manifest.name,
            str(manifest.version),
            manifest.task,
            bundle.provider,
            manifest.precision,
        )

    # --- RepositoryObserver ----------------------------------------------------------
    def engine_observer(self, bundle: ServedBundle) -> ModelObserver:
        return ModelObserver(self, bundle.manifest.name, bundle.manifest.version)

    def model_served(self, bundle: ServedBundle) -> None:
        self.model_info.labels(*self._info_labels(bundle)).set(1)

    def model_unserved(self, bundle: ServedBundle) -> None:
        with contextlib.suppress(KeyError):
            self.model_info.remove(*self._info_labels(bundle))

    def engine_stopped(self, bundle: ServedBundle) -> None:
        labels = (bundle.manifest.name, str(bundle.manifest.version))
        for gauge in (self.queue_depth, self.inflight):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)

    def reload_result(self, result: str) -> None:
        self.reloads.labels(result).inc()

    def repository_state(self, served: int, refused: int) -> None:
        self.models_loaded.set(served)
        self.bundles_refused.set(refused)

    # --- EngineProcessObserver -------------------------------------------------------
    def engine_up(self, group: str, up: bool) -> None:
        self.engine_up_gauge.labels(group).set(1 if up else 0)
        for reason in ("exited", "hung", "start_failed"):  # 0 from the start, not absent
            self.engine_restarts.labels(group, reason)

    def engine_restarted(self, group: str, reason: str) -> None:
        self.engine_restarts.labels(group, reason).inc()

    def engine_heartbeat(self, group: str, seconds: float) -> None:
        self.engine_heartbeat_seconds.labels(group).set(seconds)

    def ipc_dropped(self, side: str, count: int) -> None:
        self.ipc_dropped_total.labels(side).inc(count)

    def serve_http(self, host: str, port: int) -> int:
        """Start the Prometheus endpoint on its own port; returns the bound port. It adds
        the counters and histograms of follower front ends (`remote`) to this registry's."""
        served = merged_registry(self.registry, self.remote)
        server, _thread = start_http_server(port, addr=host, registry=served)
        return int(server.server_address[1])


class ModelObserver:
    """The engine's EngineObserver for one model, with its label children bound once."""

    def __init__(self, metrics: Metrics, model: str, version: int) -> None:
        self._metrics = metrics
        self._model = model
        self._queue = metrics.queue_seconds.labels(model)
        self._enc_batch = metrics.batch_size.labels(model, "encoder")
        self._dec_batch = metrics.batch_size.labels(model, "decoder")
        self._enc_time = metrics.compute_seconds.labels(model, "encoder")
        self._dec_time = metrics.compute_seconds.labels(model, "decoder")
        self._in_tokens = metrics.input_tokens.labels(model)
        self._out_tokens = metrics.output_tokens.labels(model)
        self._depth = metrics.queue_depth.labels(model, str(version))
        self._inflight = metrics.inflight.labels(model, str(version))
        self._failures = metrics.model_failures.labels(model)

    def encoder_batch(self, size: int, seconds: float, tokens: int) -> None:
        self._enc_batch.observe(size)
        self._enc_time.observe(seconds)
        self._in_tokens.inc(tokens)

    def decoder_step(self, size: int, seconds: float) -> None:
        self._dec_batch.observe(size)
        self._dec_time.observe(seconds)

    def request_admitted(self, queue_seconds: float) -> None:
        self._queue.observe(queue_seconds)

    def request_finished(self, status: RequestStatus, output_tokens: int) -> None:
        self._metrics.finished.labels(self._model, status.name.lower()).inc()
        if output_tokens:
            self._out_tokens.inc(output_tokens)

    def queue_depth(self, waiting: int, running: int) -> None:
        # The waiting count is owned by queue_changed, which the scheduler calls under
        # its lock on every change; this end-of-step value could be stale already.
        del waiting
        self._inflight.set(running)

    def queue_changed(self, waiting: int) -> None:
        self._depth.set(waiting)

    def model_failure(self) -> None:
        self._failures.inc()
