"""Several front-end processes on one port: what crosses between them, and a follower's
side of it.

The server process (front end 0, the supervisor) owns the model repository, the engine
processes and the /metrics port. Each further front end (`frontend_processes`) binds the
same gRPC port (SO_REUSEPORT: the kernel spreads connections over them) and follows the
supervisor over a control socket:
- supervisor -> follower: the table (engine groups with their current address, up or
  down; served models with their slot, group, bundle folder and provider), sent when a
  follower says hello and whenever a model or an engine changes;
- follower -> supervisor: a snapshot of its own counters and histograms every second
  (gRPC RED metrics, rejections), which the supervisor adds into /metrics.
A follower reads only manifests and tokenizers, talks to the engines directly (its own
EngineLink per group: requests out, its requests' events back) and never starts one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import msgspec
import zmq
import zmq.asyncio
from msgspec import Struct

from service.engine.core import EngineObserver, NullObserver
from service.engine.requests import Request
from service.engine_process.backend import ModelEngine, ServedBundle, read_served_bundle
from service.engine_process.link import DropCounter, EngineLink
from service.errors import Unavailable
from service.metrics_merge import Family, MetricsSnapshot
from service.serving.data_plane import DataPlane
from service.serving.models import ServedModel
from service.serving.reload import SyncReport

log = logging.getLogger(__name__)

METRICS_PUSH_SECONDS = 1.0  # how stale a follower's figures in /metrics may be


# --- the control channel ------------------------------------------------------------------
class TableGroup(Struct, array_like=True):
    name: str
    address: str  # the engine process's endpoint; "" while it is down
    up: bool


class TableModel(Struct, array_like=True):
    slot: int
    group: str
    path: str  # the bundle folder
    provider: str


class FrontendTable(Struct, tag="table", array_like=True):
    groups: tuple[TableGroup, ...]
    models: tuple[TableModel, ...]


class FrontendHello(Struct, tag="fhello", array_like=True):
    index: int


class FrontendServing(Struct, tag="fserving", array_like=True):
    index: int  # its gRPC port is open


ToSupervisor = FrontendHello | FrontendServing | MetricsSnapshot
_to_supervisor = msgspec.msgpack.Decoder(ToSupervisor)
_to_follower = msgspec.msgpack.Decoder(FrontendTable)
encode = msgspec.msgpack.Encoder().encode


def decode_to_supervisor(raw: bytes) -> ToSupervisor | None:
    try:
        return _to_supervisor.decode(raw)
    except Exception:
        return None


def decode_to_follower(raw: bytes) -> FrontendTable | None:
    try:
        return _to_follower.decode(raw)
    except Exception:
        return None


# --- a follower's models ------------------------------------------------------------------
class FollowedEngine:
    """ModelEngine for one slot of an engine process that the supervisor runs."""

    def __init__(self, follower: Follower, group: str, slot: int) -> None:
        self._follower = follower
        self._group = group
        self.slot = slot
        self.retiring = False

    @property
    def available(self) -> bool:
        return not self.retiring and self._follower.link(self._group) is not None

    def submit(self, request: Request) -> None:
        link = self._follower.link(self._group)
        if self.retiring:
            raise Unavailable("the model was unloaded; retry")
        if link is None:
            raise Unavailable(
                f"the engine process serving this model is restarting ({self._group}); retry"
            )
        link.submit(self.slot, request)

    def cancel(self, request: Request) -> None:
        link = self._follower.link(self._group)
        if link is not None:
            link.cancel(request.request_id)

    def retire(self) -> None:
        self.retiring = True

    def is_idle(self) -> bool:
        link = self._follower.link(self._group)
        return self.retiring and (link is None or link.waiting_on(self.slot) == 0)

    async def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_idle() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.is_idle()

    async def stop(self, timeout: float) -> None:
        del timeout  # nothing to wait for: what is left ends now
        self.retiring = True
        link = self._follower.link(self._group)
        if link is not None:
            link.fail(Unavailable("the server is shutting down; retry"), self.slot)


class _Prepared:
    def __init__(self, bundle: ServedBundle, engine: FollowedEngine) -> None:
        self.bundle = bundle
        self._engine = engine

    def start(self, observer: EngineObserver) -> ModelEngine:
        del observer  # engine observations go to the supervisor only
        return self._engine

    def discard(self) -> None:
        return None


class Follower:
    """A follower front end's model table and engine links, in step with the supervisor.

    Stands in for the model repository (sync, refused, wait_retired) and the engine
    backend (close, engine_pids) of the supervisor's server.
    """

    def __init__(
        self,
        index: int,
        control: str,
        plane: DataPlane,
        drops: DropCounter,
        on_change: Callable[[], None],
    ) -> None:
        self.index = index
        self.require_gpu = False  # the supervisor checked the providers
        self._control = control
        self._plane = plane
        self._drops = drops
        self._on_change = on_change
        self._context = zmq.asyncio.Context()
        # Every socket of this context drops unsent messages when closed, so a context that
        # is terminated (or garbage-collected) with a peer gone never blocks in term().
        self._context.setsockopt(zmq.LINGER, 0)
        self._socket: zmq.asyncio.Socket | None = None
        self._links: dict[str, EngineLink] = {}
        self._served: dict[int, ServedModel] = {}  # slot -> model
        self._retiring: list[FollowedEngine] = []
        self._first = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- as the model repository -----------------------------------------------------------
    @property
    def refused(self) -> dict[str, str]:
        return {}

    async def sync(self) -> SyncReport:
        """Connect (once) and wait for the supervisor's first table."""
        if self._socket is None:
            socket = self._context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(self._control)
            self._socket = socket
            loop = asyncio.get_running_loop()
            self._tasks.append(loop.create_task(self._receive(socket)))
            await socket.send(encode(FrontendHello(self.index)))
        await self._first.wait()
        return SyncReport()

    async def wait_retired(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for engine in self._retiring:
            await engine.wait_idle(max(0.0, deadline - time.monotonic()))

    # --- as the engine backend ---------------------------------------------------------------
    def link(self, group: str) -> EngineLink | None:
        return self._links.get(group)

    def engine_pids(self) -> dict[str, int]:
        return {}

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for link in self._links.values():
            link.fail(Unavailable("the server is shutting down; retry"))
            link.close()
        self._links.clear()
        if self._socket is not None:
            self._socket.close(linger=0)
        self._context.destroy(linger=0)  # closes any socket still open

    async def serving(self) -> None:
        """Tell the supervisor our gRPC port is open."""
        if self._socket is not None:
            await self._socket.send(encode(FrontendServing(self.index)))

    def push_metrics(self, snapshot: Callable[[], tuple[Family, ...]], every: float) -> None:
        """Send our counters and histograms to the supervisor every `every` seconds."""

        async def push() -> None:
            while True:
                await asyncio.sleep(every)
                if self._socket is not None:
                    families = snapshot()
                    await self._socket.send(encode(MetricsSnapshot(self.index, families)))

        self._tasks.append(asyncio.get_running_loop().create_task(push()))

    # --- following ---------------------------------------------------------------------------
    async def _receive(self, socket: zmq.asyncio.Socket) -> None:
        while True:
            table = decode_to_follower(await socket.recv())
            if table is None:
                self._drops.ipc_dropped("frontend", 1)
                continue
            try:
                await self._apply(table)
            except Exception:
                log.exception("front end %d could not apply the supervisor's table", self.index)
            self._first.set()
            self._on_change()

    async def _apply(self, table: FrontendTable) -> None:
        self._follow_engines(table.groups)
        wanted = {m.slot: m for m in table.models}
        for slot, entry in wanted.items():
            if slot not in self._served:
                await self._add(entry)
        for slot in [s for s in self._served if s not in wanted]:
            self._remove(slot)

    def _follow_engines(self, groups: tuple[TableGroup, ...]) -> None:
        current = {g.name: g for g in groups if g.up}
        for name, link in list(self._links.items()):
            group = current.get(name)
            if group is None or group.address != link.address:
                failed = link.fail(
                    Unavailable("the engine process serving this model stopped; retry")
                )
                link.close()
                del self._links[name]
                log.warning("engine %s went away: %d request(s) failed UNAVAILABLE", name, failed)
        for name, group in current.items():
            if name not in self._links:
                self._links[name] = EngineLink(
                    name,
                    self._context,
                    group.address,
                    self.index,
                    self._drops,
                    on_message=lambda message: None,  # Ready and nothing else comes our way
                    on_observation=lambda observation: None,
                )

    async def _add(self, entry: TableModel) -> None:
        bundle = await asyncio.to_thread(read_served_bundle, Path(entry.path), entry.provider)
        engine = FollowedEngine(self, entry.group, entry.slot)
        table = self._plane.models
        old = table.find(*bundle.key)
        # Engine observations go to the supervisor only: nothing reports to this observer.
        model = self._plane.add_model(
            _Prepared(bundle, engine), cast(EngineObserver, NullObserver())
        )
        self._served[entry.slot] = model
        if old is not None:
            self._retire(old)

    def _remove(self, slot: int) -> None:
        model = self._served.pop(slot)
        if self._plane.models.find(model.name, model.version) is model:
            self._plane.models.remove(model.name, model.version)
        self._retire(model)

    def _retire(self, model: ServedModel) -> None:
        model.engine.retire()
        if isinstance(model.engine, FollowedEngine):
            self._served.pop(model.engine.slot, None)
            self._retiring = [e for e in self._retiring if not e.is_idle()]
            self._retiring.append(model.engine)
