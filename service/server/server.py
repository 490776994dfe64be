"""The composition root: settings -> engines, the front door, the gRPC and HTTP servers,
health, reflection, metrics, follower front ends and the drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.api.interceptors import BearerAuthInterceptor, CallInterceptor
from service.api.servicer import Seq2SeqServicer
from service.api.traffic import Traffic
from service.auth import TokenChecker
from service.engine.policy import PolicyConfig
from service.engine.runtime import RuntimeOptions
from service.engine_process.backend import BatchingConfig
from service.engine_process.backends import (
    EngineBackend,
    ProcessBackend,
    ProcessSettings,
    make_backend,
)
from service.engine_process.supervisor import SupervisionOptions
from service.metrics import Metrics
from service.metrics_merge import snapshot
from service.server.follower import METRICS_PUSH_SECONDS, Follower, FrontendTable
from service.server.frontends import FollowerRole, FrontendPool, frontend_table
from service.serving.data_plane import DataPlane
from service.serving.front_door import FrontDoor, RequestLimits
from service.serving.reload import ModelRepository
from service.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Seq2Seq"].full_name


def batching_config(settings: Settings) -> BatchingConfig:
    return BatchingConfig(
        policy="continuous" if settings.continuous_batching else "static",
        max_queue_size=settings.max_queue_size,
        policy_config=PolicyConfig(
            max_batch_size=settings.max_batch_size,
            max_queue_delay=settings.max_queue_delay,
            max_bypass_delay=settings.max_bypass_delay,
        ),
    )


class StartupError(RuntimeError):
    """The server cannot start as configured (e.g. a GPU was required and is missing).

    `exit_status` is what `seq2seq-serve` exits with: 2 for a setting the user got wrong
    (a model repository that is missing or loads nothing), 1 for what the machine lacks.
    """

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def runtime_options(settings: Settings) -> RuntimeOptions:
    return RuntimeOptions(
        providers=settings.providers,
        cuda_device_id=settings.cuda_device_id,
        intra_op_threads=settings.intra_op_threads,
        inter_op_threads=settings.inter_op_threads,
        cuda_mem_limit=settings.cuda_mem_limit,
        cuda_use_tf32=settings.cuda_use_tf32,
        io_binding=settings.io_binding == "on",
    )


def engine_backend(
    settings: Settings, metrics: Metrics, on_change: Callable[[], None]
) -> EngineBackend:
    """Engine threads or engine processes (`engine_mode`), as the settings say."""
    return make_backend(
        settings.engine_mode,
        ProcessSettings(
            runtime=runtime_options(settings),
            batching=batching_config(settings),
            groups=settings.engine_groups,
            supervision=SupervisionOptions(
                heartbeat_interval=settings.engine_heartbeat_interval,
                heartbeat_timeout=settings.engine_heartbeat_timeout,
                start_timeout=settings.engine_start_timeout,
                restart_backoff=settings.engine_restart_backoff,
                restart_backoff_max=settings.engine_restart_backoff_max,
                max_restarts=settings.engine_max_restarts,
            ),
            log_level=settings.log_level,
            log_format=settings.log_format,
        ),
        metrics,
        on_change,
    )


def grpc_server_options(settings: Settings) -> list[tuple[str, int]]:
    """Channel options of the gRPC server: message limits and connection age."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    if settings.max_connection_age > 0:
        options += [
            ("grpc.max_connection_age_ms", int(settings.max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace * 1000)),
        ]
    return options


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files; None = plaintext.

    With `tls_client_ca_file` set, clients must present a certificate issued by that CA.
    """
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    client_ca = settings.tls_client_ca_file
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca is not None else None,
        require_client_auth=client_ca is not None,
    )


def call_interceptors(
    settings: Settings, metrics: Metrics, traffic: Traffic
) -> list[grpc.aio.ServerInterceptor]:
    """Metrics, access log and call counting outermost, then bearer auth when tokens are
    configured.

    Auth sits inside `CallInterceptor`, so refused calls are still counted and logged
    with code UNAUTHENTICATED.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = [CallInterceptor(metrics, traffic)]
    tokens = settings.bearer_tokens()
    if tokens:
        interceptors.append(BearerAuthInterceptor(tokens, settings.auth_exempt_services))
    log.info("bearer-token authentication %s", f"on ({len(tokens)} token(s))" if tokens else "off")
    return interceptors


class HttpFrontEnd:
    """The HTTP/JSON port: the FastAPI app over the same front door, auth and metrics."""

    def __init__(self, settings: Settings, front_door: FrontDoor, metrics: Metrics) -> None:
        from service.http.app import create_app
        from service.http.context import HttpContext
        from service.http.uvicorn_server import HttpServer

        tokens = settings.bearer_tokens()
        self.context = HttpContext(
            front_door=front_door,
            metrics=metrics,
            tokens=TokenChecker(tokens) if tokens else None,
            max_body_bytes=settings.max_message_bytes,
            max_file_bytes=settings.max_file_bytes,
        )
        self._server = HttpServer(
            create_app(self.context),
            settings.http_host,
            settings.http_port,
            settings.drain_grace_period,
        )

    async def start(self) -> int:
        return await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()


class Seq2SeqServer:
    """One server instance; tests create it on port 0 and read `port` / `metrics_port`."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        follower: FollowerRole | None = None,
    ) -> None:
        """`follower`: this is a further front end of a server that runs the engines."""
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.plane = DataPlane(
            batching_config(settings), settings.max_beam_size, settings.default_versions
        )
        self.front_door = FrontDoor(
            self.plane,
            RequestLimits(
                max_input_chars=settings.max_input_chars,
                max_document_chars=settings.max_document_chars,
                max_texts=settings.max_texts,
                document_concurrency=settings.document_concurrency,
            ),
        )
        self.health = HealthServicer()
        self._health_updates: set[asyncio.Task[None]] = set()
        self._model_health: set[str] = set()
        self.follower: Follower | None = None
        self.frontends: FrontendPool | None = None
        self.backend: EngineBackend | Follower
        self.repository: ModelRepository | Follower
        if follower is not None:
            self.follower = Follower(
                follower.index, follower.control, self.plane, self.metrics, self._engines_changed
            )
            self.backend = self.repository = self.follower
        else:
            self.backend = engine_backend(settings, self.metrics, self._engines_changed)
            self.repository = ModelRepository(
                settings.model_repository,
                self.backend,
                self.plane,
                self.metrics,
                retire_grace=settings.drain_grace_period,
            )
            if settings.frontend_count() > 1:
                self.frontends = FrontendPool(
                    settings, self.metrics.remote, settings.frontend_count()
                )
        self.traffic = Traffic()
        self._poller: asyncio.Task[None] | None = None
        self.port = 0
        self.metrics_port = 0
        self.http_port = 0
        self._http: HttpFrontEnd | None = None
        self._server: grpc.aio.Server | None = None

    async def _load_models(self) -> None:
        root = self.settings.model_repository
        empty_ok = self.settings.allow_empty_repository
        if not root.is_dir() and not empty_ok:
            raise StartupError(
                f"model repository {root} is not a folder; point --model-repository "
                "(SEQ2SEQ_MODEL_REPOSITORY) at a folder of <name>/<version>/ bundles",
                exit_status=2,
            )
        await self.repository.sync()
        if not self.plane.models.all() and not empty_ok:
            refused = self.repository.refused
            reason = (
                f"all {len(refused)} bundle(s) in it were refused (the log says why)"
                if refused
                else "it holds no <name>/<version>/bundle.json"
            )
            raise StartupError(
                f"no model loaded from model repository {root}: {reason}; "
                "allow_empty_repository starts an empty server for hot reload",
                exit_status=2,
            )
        if not self.settings.require_gpu:
            return
        for model in self.plane.models.all():
            if model.provider != "CUDAExecutionProvider":
                raise StartupError(
                    f"require_gpu is set but {model.name} v{model.version} "
                    f"runs on {model.provider}; check the CUDA and cuDNN libraries"
                )
        self.repository.require_gpu = True  # hot-reloaded bundles must run on CUDA too

    async def _update_health(self) -> None:
        """SERVING while at least one model's engine serves; `Seq2Seq/<model>` per model."""
        statuses = health_pb2.HealthCheckResponse
        health = self.front_door.health()
        status = statuses.SERVING if health.serving else statuses.NOT_SERVING
        await self.health.set("", status)
        await self.health.set(SERVICE_NAME, status)
        for name in self._model_health - set(health.models):
            await self.health.set(f"{SERVICE_NAME}/{name}", statuses.SERVICE_UNKNOWN)
        for name, up in health.models.items():
            await self.health.set(
                f"{SERVICE_NAME}/{name}", statuses.SERVING if up else statuses.NOT_SERVING
            )
        self._model_health = set(health.models)
        if self.frontends is not None:
            self.frontends.publish(self._frontend_table())

    def _frontend_table(self) -> FrontendTable:
        groups: dict[str, tuple[str, bool]] = {}
        if isinstance(self.backend, ProcessBackend):
            groups = {
                name: (group.address, group.up) for name, group in self.backend.groups().items()
            }
        return frontend_table(self.plane.models.all(), groups)

    def _engines_changed(self) -> None:
        """An engine process died or came back: health follows (on the event loop)."""
        task = asyncio.get_running_loop().create_task(self._update_health())
        self._health_updates.add(task)
        task.add_done_callback(self._health_updates.discard)

    async def _poll_repository(self, interval: float) -> None:
        """Hot reload: rescan every `interval` seconds until the server drains."""
        while True:
            await asyncio.sleep(interval)
            try:
                report = await self.repository.sync()
            except Exception:
                log.exception("model repository rescan failed; serving what is loaded")
                continue
            if report.changed:
                await self._update_health()

    async def start(self) -> None:
        """Load the models and open the ports; on failure nothing is left running (the
        engine processes and follower front ends are stopped before the error leaves)."""
        try:
            await self._start()
        except BaseException:
            if self.frontends is not None:
                self.frontends.terminate()
                await self.frontends.close()
            await self.backend.close()
            raise

    async def _start(self) -> None:
        await self._load_models()
        settings = self.settings
        server = grpc.aio.server(
            interceptors=call_interceptors(settings, self.metrics, self.traffic),
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
            options=grpc_server_options(settings),
        )
        pb_grpc.add_Seq2SeqServicer_to_server(
            Seq2SeqServicer(self.front_door, self.metrics), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        address = f"{settings.host}:{settings.port}"
        credentials = server_credentials(settings)
        if credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, credentials)
        if self.port == 0:
            raise StartupError(f"cannot bind the gRPC port {settings.host}:{settings.port}")
        await server.start()
        self._server = server
        await self._update_health()
        if self.follower is not None:
            self.follower.push_metrics(
                lambda: snapshot(self.metrics.registry), every=METRICS_PUSH_SECONDS
            )
            await self.follower.serving()
        else:
            self.metrics_port = self.metrics.serve_http(
                settings.metrics_host, settings.metrics_port
            )
        if settings.http_enabled:
            self._http = HttpFrontEnd(settings, self.front_door, self.metrics)
            try:
                self.http_port = await self._http.start()
                log.info(
                    "HTTP/JSON and LibreTranslate's API on %s:%d",
                    settings.http_host,
                    self.http_port,
                )
            except OSError as error:
                raise StartupError(
                    f"cannot bind the HTTP port {settings.http_host}:{settings.http_port}: {error}"
                ) from error
        if self.frontends is not None:
            await self.frontends.start(self.port, self._frontend_table())
        if settings.repository_poll_interval > 0 and self.follower is None:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll_repository(settings.repository_poll_interval)
            )
        log.info(
            "serving %d model(s) on %s:%d, metrics on %s:%d; %d bundle(s) refused",
            len(self.plane.models.all()),
            settings.host,
            self.port,
            settings.metrics_host,
            self.metrics_port,
            len(self.repository.refused),
        )

    async def drain(self, grace: float | None = None) -> bool:
        """Health NOT_SERVING, new calls UNAVAILABLE, in-flight calls finish within `grace`,
        then wait until no call has arrived for `drain_quiet_period`.

        Returns True when the clients went quiet within `grace`. Why wait: grpc-core's stop
        cancels (CANCELLED) every call it has received but not yet handed to us, and every
        call that arrives before its GOAWAY reaches the client. So the port stays open,
        answering UNAVAILABLE, until the clients have stopped calling (health-checking
        clients, such as the SDK's, stop at once on NOT_SERVING).
        """
        grace = self.settings.drain_grace_period if grace is None else grace
        deadline = time.monotonic() + grace
        arrivals = self.traffic.arrivals
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self.health.enter_graceful_shutdown()
        if self.frontends is not None:
            self.frontends.terminate()  # each follower drains its own calls
        self.front_door.draining = True
        await self.plane.drain(grace)
        if self._http is not None:
            await self._http.stop()
        await self.repository.wait_retired(max(0.0, deadline - time.monotonic()))
        if self.frontends is not None:
            await self.frontends.wait(max(0.0, deadline - time.monotonic()))
            await self.frontends.close()
        await self.backend.close()  # every model has let go: stop the engine processes
        quiet = await self.traffic.wait_quiet(self.settings.drain_quiet_period, deadline)
        log.info(
            "drained: %d call(s) arrived while draining, %d in flight; clients %s",
            self.traffic.arrivals - arrivals,
            self.traffic.in_flight,
            "went quiet" if quiet else f"still calling after {grace:.1f} s",
        )
        return quiet

    async def close(self) -> None:
        """Stop gRPC (after `drain`): streams still open (health watches) are cancelled
        after `drain_quiet_period`."""
        if self._server is not None:
            await self._server.stop(grace=self.settings.drain_quiet_period)

    async def drain_and_stop(self, grace: float | None = None) -> bool:
        """`drain`, then `close`; returns whether the clients went quiet first."""
        quiet = await self.drain(grace)
        await self.close()
        return quiet


def _exit_process(status: int) -> NoReturn:
    """End the process now, without grpc-core's stop: the kernel closes every connection,
    so calls still in transit fail UNAVAILABLE (connection closed) at the client."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


async def serve(settings: Settings, follower: FollowerRole | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain and stop.

    Clients that keep calling through the whole grace period (ones that ignore health and
    retry at once) would race with gRPC's stop and see CANCELLED; for them the process
    ends without it, and their connections simply close (UNAVAILABLE). Every accepted call
    has finished by then. `follower`: this process is a further front end of a server.
    """
    server = Seq2SeqServer(settings, follower=follower)
    try:
        await server.start()
    except StartupError:
        # Stop the engine processes already started before the one-line error is printed,
        # so their own exit is not logged after it.
        with contextlib.suppress(Exception):
            await server.drain(0.0)
        raise
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()

    def on_signal(signum: int) -> None:
        if not signalled.is_set():
            log.info("signal %d: draining for up to %.1f s", signum, settings.drain_grace_period)
            signalled.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await signalled.wait()
    quiet = await server.drain()
    if not quiet:
        log.info("stopped (connections closed with the process)")
        _exit_process(0)
    await server.close()
    log.info("stopped")
