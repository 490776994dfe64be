"""`engine_mode: process`: the server's side of one engine-core process (a model group).

An EngineGroup starts `python -m service.engine_process.worker`, loads the group's bundles into
it, and reaches it through an EngineLink (requests out, events in). It supervises it:
- **death** (crash, OOM kill, SIGKILL) is seen at once through a pidfd on the event loop:
  every request in flight or queued there ends UNAVAILABLE, the group's models report
  unavailable (health NOT_SERVING), the exit status is logged and counted, and a new
  process is started after a backoff that doubles from `restart_backoff` up to
  `restart_backoff_max` (reset once a process has stayed up that long); after
  `max_restarts` consecutive failures it gives up and the models stay unavailable;
- **hangs**: a heartbeat every `heartbeat_interval`; heartbeats unanswered for
  `heartbeat_timeout`, or a decoder step running longer than that, get the process
  SIGKILLed, then as above.
The worker dies with this process (PR_SET_PDEATHSIG and end-of-file on its stdin pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import msgspec
import zmq
import zmq.asyncio

import service
from service.bundle import BundleError
from service.engine.core import EngineObserver
from service.engine.requests import Request, RequestStatus
from service.engine_process import wire
from service.engine_process.link import EngineLink
from service.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SupervisionOptions:
    heartbeat_interval: float  # seconds between pings
    heartbeat_timeout: float  # pings unanswered this long, or one step this long = hung
    start_timeout: float  # seconds a new process gets to load its bundles
    restart_backoff: float  # first restart delay, doubled per consecutive failure
    restart_backoff_max: float  # longest delay; a process up this long resets the count
    max_restarts: int  # consecutive failed restarts before giving up; 0 = never


class EngineProcessObserver(Protocol):
    """What supervision reports; `service.metrics` implements it."""

    def engine_up(self, group: str, up: bool) -> None: ...

    def engine_restarted(self, group: str, reason: str) -> None: ...

    def engine_heartbeat(self, group: str, seconds: float) -> None: ...

    def ipc_dropped(self, side: str, count: int) -> None: ...


@dataclass
class _Slot:
    path: Path  # the bundle folder (loaded again into a restarted process)
    loaded: asyncio.Future[str]  # the provider, once the current process loaded it
    ready: bool = False  # loaded in the current process
    observer: EngineObserver | None = None  # set when the model starts serving
    retiring: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


def describe_exit(status: int | None) -> str:
    if status is None:
        return "unknown status"
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


def child_environment() -> dict[str, str]:
    """This environment, with the folder our `service` package came from on the path."""
    root = str(Path(service.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, path) if p)}


def watch_exit(
    process: subprocess.Popen[bytes], on_exit: Callable[[int | None], None]
) -> asyncio.Task[None] | None:
    """Call `on_exit(status)` on the loop as soon as `process` ends: a pidfd where the
    kernel has them (no polling), else a polling task (returned, for cancelling)."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):

        async def poll() -> None:
            while process.poll() is None:
                await asyncio.sleep(0.05)
            on_exit(process.returncode)

        return loop.create_task(poll())

    def reaped() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        on_exit(process.wait())

    loop.add_reader(fd, reaped)
    return None


class EngineGroup:
    """One engine-core process serving a group of models, restarted when it dies."""

    def __init__(
        self,
        name: str,
        config: Callable[[str], wire.WorkerConfig],
        run_dir: Path,
        context: zmq.asyncio.Context,
        options: SupervisionOptions,
        observer: EngineProcessObserver,
        on_change: Callable[[], None],
    ) -> None:
        self.name = name
        self._config = config  # address -> the worker's configuration
        self._run_dir = run_dir
        self._context = context
        self._options = options
        self._observer = observer
        self._on_change = on_change
        self._slots: dict[int, _Slot] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._link: EngineLink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[int] | None = None
        self._restarting: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._up = False
        self._closing = False
        self._epoch = 0
        self._failures = 0
        self._started_at = 0.0
        self._ping = 0  # heartbeats sent
        self._answered = 0  # the highest heartbeat answered
        self._kill_reason = ""
        self._exited = asyncio.Event()

    # --- what the models and the front ends read ---------------------------------------
    @property
    def up(self) -> bool:
        return self._up

    @property
    def address(self) -> str:
        """The current process's endpoint (ipc:// in a private folder); "" when down."""
        return self._link.address if self._link is not None and self._up else ""

    @property
    def epoch(self) -> int:
        """How many processes this group has started (front ends reconnect when it moves)."""
        return self._epoch

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def slot_available(self, slot: int) -> bool:
        state = self._slots.get(slot)
        return self._up and state is not None and state.ready and not state.retiring

    # --- lifecycle --------------------------------------------------------------------------
    async def ensure_started(self) -> None:
        """Start the process if it is not running (one start at a time)."""
        if self._up:
            return
        if self._restarting is not None and not self._restarting.done():
            await asyncio.shield(self._restarting)
            if not self._up:
                raise Unavailable(f"engine process {self.name} is not running")
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._launch())
        await asyncio.shield(self._starting)

    async def load(self, slot: int, path: Path) -> str:
        """Load a bundle into this group's process; its provider, or BundleError."""
        try:
            await self.ensure_started()
        except Exception as exc:
            raise BundleError(f"{path}: engine process {self.name} did not start: {exc}") from exc
        state = _Slot(path=path, loaded=asyncio.get_running_loop().create_future())
        self._slots[slot] = state
        self._send(wire.Load(slot, str(path)))
        try:
            return await asyncio.shield(state.loaded)
        except BaseException:
            self._slots.pop(slot, None)
            raise

    def attach(self, slot: int, observer: EngineObserver) -> None:
        self._slots[slot].observer = observer

    async def close(self, timeout: float) -> None:
        """Ask the process to stop, wait for it (killed after `timeout`), fail what is left."""
        self._closing = True
        for task in (self._restarting, self._starting):
            if task is not None and not task.done():
                task.cancel()
        process = self._process
        if process is None:
            return
        with contextlib.suppress(zmq.ZMQError):
            self._send(wire.Shutdown())
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("engine process %s did not stop in %.1f s; killing it", self.name, timeout)
            process.kill()
            await self._exited.wait()

    # --- requests ---------------------------------------------------------------------------
    def submit(self, slot: int, request: Request) -> None:
        state = self._slots.get(slot)
        if state is None or state.retiring:
            raise Unavailable("the model was unloaded; retry")
        if not self._up or self._link is None:
            raise Unavailable(
                f"the engine process serving this model is restarting ({self.name}); retry"
            )
        self._link.submit(slot, request)

    def cancel(self, rid: str) -> None:
        if self._link is not None:
            self._link.cancel(rid)

    def retire(self, slot: int) -> None:
        state = self._slots.get(slot)
        if state is None or state.retiring:
            return
        state.retiring = True
        if self._up:
            self._send(wire.Retire(slot))
        else:
            self._let_go(slot)

    def stop_slot(self, slot: int) -> None:
        state = self._slots.get(slot)
        if state is None:
            return
        state.retiring = True
        if self._up:
            with contextlib.suppress(zmq.ZMQError):
                self._send(wire.StopSlot(slot))
        else:
            self._let_go(slot)

    def slot_stopped(self, slot: int) -> bool:
        return slot not in self._slots

    async def wait_stopped(self, slot: int, timeout: float) -> bool:
        state = self._slots.get(slot)
        if state is None:
            return True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(state.stopped.wait(), timeout)
        return state.stopped.is_set()

    # --- the process ------------------------------------------------------------------------
    async def _launch(self) -> None:
        """Start a process, wait for its hello, load every slot; raises when it fails."""
        loop = asyncio.get_running_loop()
        self._epoch += 1
        address = f"ipc://{self._run_dir}/{self.name}-{self._epoch}.sock"
        process = subprocess.Popen(
            [sys.executable, "-m", "service.engine_process.worker"],
            stdin=subprocess.PIPE,
            env=child_environment(),
        )
        assert process.stdin is not None
        process.stdin.write(msgspec.json.encode(self._config(address)) + b"\n")
        process.stdin.flush()  # the pipe stays open: the worker exits at its end of file
        self._process = process
        self._kill_reason = ""
        self._started_at = time.monotonic()
        self._exited = asyncio.Event()
        poller = watch_exit(process, lambda status: self._gone(process, status))
        self._tasks = [poller] if poller is not None else []
        self._ready = loop.create_future()
        self._link = EngineLink(
            self.name, self._context, address, 0, self._observer, self._control, self._observe
        )
        work = loop.create_task(self._hello_and_load())
        lost = loop.create_task(self._exited.wait())
        try:
            done, _ = await asyncio.wait(
                {work, lost}, timeout=self._options.start_timeout, return_when=FIRST_COMPLETED
            )
            if work not in done:
                raise Unavailable(
                    f"engine process {self.name} "
                    + ("exited while starting" if lost in done else "did not start in time")
                )
            pid = work.result()
        except BaseException as exc:
            if self._process is process:
                self._kill_reason = f"start failed: {exc}"
                process.kill()
            raise
        finally:
            work.cancel()
            lost.cancel()
        self._up = True
        self._answered = self._ping
        self._tasks.append(loop.create_task(self._heartbeat()))
        log.info("engine process %s started (pid %d, %s)", self.name, pid, address)
        self._observer.engine_up(self.name, True)
        self._on_change()

    async def _hello_and_load(self) -> int:
        """Wait for the process's hello, load every slot again; a bundle that no longer
        loads is dropped (its model stays unavailable)."""
        assert self._ready is not None
        pid = await self._ready
        loop = asyncio.get_running_loop()
        for number, state in list(self._slots.items()):
            if state.retiring:
                self._let_go(number)
                continue
            state.ready = False
            if state.loaded.done():  # loaded by a previous process
                state.loaded = loop.create_future()
            self._send(wire.Load(number, str(state.path)))
        for number, state in list(self._slots.items()):
            try:
                await asyncio.shield(state.loaded)
            except BundleError as exc:
                log.error(
                    "engine process %s could not load %s again: %s", self.name, state.path, exc
                )
                self._let_go(number)
        return pid

    def _gone(self, process: subprocess.Popen[bytes], status: int | None) -> None:
        """The process ended: fail its requests, report, restart unless closing."""
        if process is not self._process:
            return  # an earlier process, already handled
        self._process = None
        was_up, self._up = self._up, False
        uptime = time.monotonic() - self._started_at
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        error = Unavailable(
            f"the engine process serving this model stopped ({describe_exit(status)}); retry"
        )
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # retrieved: the start that awaited it has its own answer
        self._exited.set()
        failed = 0
        if self._link is not None:
            failed = self._link.fail(error)
            self._link.close()
            self._link = None
        for number, state in list(self._slots.items()):
            state.ready = False
            if state.retiring:
                self._let_go(number)
        self._observer.engine_up(self.name, False)
        self._on_change()
        if self._closing:
            log.info("engine process %s stopped (%s)", self.name, describe_exit(status))
            return
        reason = "hung" if self._kill_reason.startswith("hung") else "exited"
        log.error(
            "engine process %s (pid %d) %s after %.1f s%s; %d request(s) failed UNAVAILABLE",
            self.name,
            process.pid,
            describe_exit(status),
            uptime,
            f" ({self._kill_reason})" if self._kill_reason else "",
            failed,
            extra={"exit_status": status, "engine": self.name},
        )
        if not was_up:
            return  # a start that failed: whoever started it decides what next
        if uptime >= self._options.restart_backoff_max:
            self._failures = 0
        self._restarting = asyncio.get_running_loop().create_task(self._restart(reason))

    async def _restart(self, reason: str) -> None:
        options = self._options
        while not self._closing:
            self._failures += 1
            if options.max_restarts and self._failures > options.max_restarts:
                self._give_up()
                return
            delay = min(
                options.restart_backoff * 2 ** (self._failures - 1), options.restart_backoff_max
            )
            log.warning(
                "restarting engine process %s in %.2f s (restart %d in a row)",
                self.name,
                delay,
                self._failures,
            )
            await asyncio.sleep(delay)
            self._observer.engine_restarted(self.name, reason)
            try:
                await self._launch()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = "start_failed"
                log.error("engine process %s failed to start: %r", self.name, exc)

    def _give_up(self) -> None:
        log.error(
            "engine process %s failed %d times in a row; giving up: its models stay "
            "unavailable (health NOT_SERVING) until the server restarts",
            self.name,
            self._failures - 1,
        )
        error = BundleError(f"engine process {self.name} is not running")
        for state in list(self._slots.values()):
            if not state.loaded.done():
                state.loaded.set_exception(error)
                state.loaded.exception()  # retrieved: nobody may be waiting

    def _kill(self, reason: str) -> None:
        process = self._process
        if process is None or self._kill_reason:
            return
        self._kill_reason = reason
        log.error("engine process %s (pid %d) is %s; killing it", self.name, process.pid, reason)
        process.kill()

    def _let_go(self, slot: int) -> None:
        state = self._slots.pop(slot, None)
        if state is not None:
            state.stopped.set()

    # --- messages ---------------------------------------------------------------------------
    def _send(self, message: msgspec.Struct) -> None:
        if self._link is None:
            raise zmq.ZMQError(zmq.ENOTCONN, "no engine process")
        self._link.send(message)

    async def _heartbeat(self) -> None:
        """Ping every interval; hung = pings unanswered for `heartbeat_timeout`.

        Silence is counted in pings this loop sent, not in wall time, so a stalled event
        loop (which cannot read the answers either) never gets a healthy engine killed.
        """
        options = self._options
        while True:
            await asyncio.sleep(options.heartbeat_interval)
            unanswered = self._ping - self._answered
            if unanswered * options.heartbeat_interval >= options.heartbeat_timeout:
                self._kill(f"hung: {unanswered} heartbeats unanswered")
                return
            self._ping += 1
            with contextlib.suppress(zmq.ZMQError):
                self._send(wire.Ping(self._ping, time.monotonic()))

    def _control(self, message: wire.FromEngine) -> None:
        if isinstance(message, wire.Pong):
            self._answered = max(self._answered, message.seq)
            self._observer.engine_heartbeat(self.name, time.monotonic() - message.sent)
            for slot, seconds in message.busy:
                if seconds > self._options.heartbeat_timeout:
                    self._kill(f"hung: a decoder step of slot {slot} has run {seconds:.1f} s")
        elif isinstance(message, wire.Ready):
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message.pid)
        elif isinstance(message, wire.Loaded | wire.Refused):
            state = self._slots.get(message.slot)
            if state is None or state.loaded.done():
                return
            if isinstance(message, wire.Loaded):
                state.ready = True
                state.loaded.set_result(message.provider)
            else:
                state.loaded.set_exception(BundleError(message.reason))
        elif isinstance(message, wire.Stopped):
            self._let_go(message.slot)

    def _observe(self, observation: wire.Observation) -> None:
        if isinstance(observation, wire.Dropped):
            self._observer.ipc_dropped("engine", observation.count)
            return
        state = self._slots.get(observation.slot)
        observer = state.observer if state is not None else None
        if observer is None:
            return
        if isinstance(observation, wire.DecoderStep):
            observer.decoder_step(observation.size, observation.seconds)
        elif isinstance(observation, wire.Depth):
            observer.queue_changed(observation.waiting)
            observer.queue_depth(observation.waiting, observation.running)
        elif isinstance(observation, wire.EncoderRun):
            observer.encoder_batch(observation.size, observation.seconds, observation.tokens)
        elif isinstance(observation, wire.Admitted):
            observer.request_admitted(observation.queue_seconds)
        elif isinstance(observation, wire.Left):
            observer.request_finished(RequestStatus(observation.status), observation.tokens)
        elif isinstance(observation, wire.Failure):
            observer.model_failure()


class ProcessEngine:
    """ModelEngine for one slot of an EngineGroup."""

    def __init__(self, group: EngineGroup, slot: int) -> None:
        self.group = group
        self.slot = slot

    @property
    def available(self) -> bool:
        return self.group.slot_available(self.slot)

    def submit(self, request: Request) -> None:
        self.group.submit(self.slot, request)

    def cancel(self, request: Request) -> None:
        self.group.cancel(request.request_id)

    def retire(self) -> None:
        self.group.retire(self.slot)

    def is_idle(self) -> bool:
        return self.group.slot_stopped(self.slot)

    async def wait_idle(self, timeout: float) -> bool:
        return await self.group.wait_stopped(self.slot, timeout)

    async def stop(self, timeout: float) -> None:
        self.group.stop_slot(self.slot)
        await self.group.wait_stopped(self.slot, timeout)
