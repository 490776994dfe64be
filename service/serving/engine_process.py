"""`engine_mode: process`: the front end's side of one engine-core process.

An EngineGroup starts `python -m service.engine.worker` for one model group, loads that
group's bundles into it, sends requests and cancellations, and turns the step batches
that come back into the requests' results (async_bridge listeners) and metric
observations. It supervises the process:
- **death** (crash, OOM kill, SIGKILL) is seen at once through a pidfd on the event loop:
  every request in flight or queued there ends UNAVAILABLE, the group's models report
  unavailable (health NOT_SERVING), the exit status is logged and counted, and a new
  process is started after a backoff that doubles from `restart_backoff` up to
  `restart_backoff_max` (reset once a process has stayed up that long); after
  `max_restarts` consecutive failures it gives up and the models stay unavailable;
- **hangs**: a heartbeat every `heartbeat_interval`; no answer within `heartbeat_timeout`,
  or a decoder step running longer than that, gets the process SIGKILLed, then as above;
- **undecodable messages** from the socket are dropped and counted.
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
from typing import Protocol, cast

import msgspec
import zmq
import zmq.asyncio

import service
from service.bundle import BundleError
from service.engine import wire
from service.engine.core import EngineObserver
from service.engine.requests import Request, RequestStatus, TokenEvent
from service.errors import InternalError, Overloaded, Unavailable
from service.serving.async_bridge import LoopListener

log = logging.getLogger(__name__)

_SEND_HWM = 100_000  # messages queued towards one engine before submit refuses


@dataclass(frozen=True)
class SupervisionOptions:
    heartbeat_interval: float  # seconds between pings
    heartbeat_timeout: float  # no pong, or one step running, this long = hung
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


@dataclass(frozen=True)
class _Pending:
    listener: LoopListener
    slot: int


def _describe(status: int | None) -> str:
    if status is None:
        return "unknown status"
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


def _child_environment() -> dict[str, str]:
    """This environment, with the folder our `service` package came from on the path."""
    root = str(Path(service.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, path) if p)}


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
        frontend: int = 0,
    ) -> None:
        self.name = name
        self._config = config  # address -> the worker's configuration
        self._run_dir = run_dir
        self._context = context
        self._options = options
        self._observer = observer
        self._on_change = on_change
        self._frontend = frontend
        self._slots: dict[int, _Slot] = {}
        self._pending: dict[str, _Pending] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[int] | None = None
        self._restarting: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._up = False
        self._closing = False
        self._gave_up = False
        self._epoch = 0
        self._address = ""
        self._failures = 0
        self._started_at = 0.0
        self._drops = 0  # undecodable messages dropped
        self._ping = 0  # heartbeats sent
        self._answered = 0  # the highest heartbeat answered
        self._kill_reason = ""
        self._exited = asyncio.Event()

    # --- what the models read --------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self._up

    @property
    def address(self) -> str:
        """The current process's endpoint (ipc:// in a private folder)."""
        return self._address

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

    async def close(self, timeout: float = 5.0) -> None:
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
        if not self._up:
            raise Unavailable(
                f"the engine process serving this model is restarting ({self.name}); retry"
            )
        listener = request.listener
        assert isinstance(listener, LoopListener)
        self._pending[request.request_id] = _Pending(listener, slot)
        try:
            self._send(wire.submit_message(slot, request, listener.stream))
        except zmq.ZMQError as exc:
            self._pending.pop(request.request_id, None)
            raise Overloaded(
                "the engine's input is full; retry with backoff or send to another replica"
            ) from exc

    def cancel(self, rid: str) -> None:
        if self._pending.pop(rid, None) is not None and self._up:
            with contextlib.suppress(zmq.ZMQError):
                self._send(wire.Cancel(rid))

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
        self._address = address
        config = self._config(address)
        process = subprocess.Popen(
            [sys.executable, "-m", "service.engine.worker"],
            stdin=subprocess.PIPE,
            env=_child_environment(),
        )
        assert process.stdin is not None
        process.stdin.write(msgspec.json.encode(config) + b"\n")
        process.stdin.flush()  # the pipe stays open: the worker exits at its end of file
        self._process = process
        self._kill_reason = ""
        self._started_at = time.monotonic()
        self._exited = asyncio.Event()
        self._watch_exit(process)
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, _SEND_HWM)
        socket.setsockopt(zmq.RCVHWM, 0)
        socket.connect(address)
        self._socket = socket
        self._ready = loop.create_future()
        self._tasks.append(loop.create_task(self._receive(socket)))
        self._send(wire.Hello(self._frontend))
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

    def _watch_exit(self, process: subprocess.Popen[bytes]) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(process.pid)
        except (AttributeError, OSError):  # no pidfd (old kernel): poll
            self._tasks.append(loop.create_task(self._poll_exit(process)))
            return

        def reaped() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self._gone(process, process.wait())

        loop.add_reader(fd, reaped)

    async def _poll_exit(self, process: subprocess.Popen[bytes]) -> None:
        while process.poll() is None:
            await asyncio.sleep(0.05)
        self._gone(process, process.returncode)

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
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        error = Unavailable(
            f"the engine process serving this model stopped ({_describe(status)}); retry"
        )
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # retrieved: the start that awaited it has its own answer
        self._exited.set()
        failed = list(self._pending.values())
        self._pending.clear()
        for pending in failed:
            pending.listener.finish(error)
        for number, state in list(self._slots.items()):
            state.ready = False
            if state.retiring:
                self._let_go(number)
        self._observer.engine_up(self.name, False)
        if self._closing:
            log.info("engine process %s stopped (%s)", self.name, _describe(status))
            self._on_change()
            return
        reason = "hung" if self._kill_reason.startswith("hung") else "exited"
        log.error(
            "engine process %s (pid %d) %s after %.1f s%s; %d request(s) failed UNAVAILABLE",
            self.name,
            process.pid,
            _describe(status),
            uptime,
            f" ({self._kill_reason})" if self._kill_reason else "",
            len(failed),
            extra={"exit_status": status, "engine": self.name},
        )
        self._on_change()
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
        self._gave_up = True
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

    # --- the socket -------------------------------------------------------------------------
    def _send(self, message: msgspec.Struct) -> None:
        socket = self._socket
        if socket is None:
            raise zmq.ZMQError(zmq.ENOTCONN, "no engine process")
        sent = cast("asyncio.Future[None]", socket.send(wire.encode(message), zmq.NOBLOCK))
        error = sent.exception() if sent.done() else None  # NOBLOCK: done at once
        if error is not None:
            raise error

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

    async def _receive(self, socket: zmq.asyncio.Socket) -> None:
        while True:
            raw = await socket.recv()
            message = wire.decode_from_engine(raw)
            if message is None:
                self._dropped()
                continue
            try:
                self._dispatch(message)
            except ValueError:  # an array that does not match its shape, a bad status
                self._dropped()

    def _dropped(self) -> None:
        self._observer.ipc_dropped("frontend", 1)
        self._drops += 1
        if self._drops in (1, 10, 100) or self._drops % 1000 == 0:  # counted, not flooded
            log.warning(
                "dropped an undecodable message from engine process %s (%d so far)",
                self.name,
                self._drops,
            )

    def _dispatch(self, message: wire.FromEngine) -> None:
        if isinstance(message, wire.Batch):
            for event in message.events:
                self._deliver(event)
            for observation in message.observations:
                self._observe(observation)
        elif isinstance(message, wire.Pong):
            now = time.monotonic()
            self._answered = max(self._answered, message.seq)
            self._observer.engine_heartbeat(self.name, now - message.sent)
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

    def _deliver(self, event: wire.Event) -> None:
        if isinstance(event, wire.Token):
            pending = self._pending.get(event.rid)
            if pending is not None:
                pending.listener.token(TokenEvent(event.index, event.token_id, event.log_prob))
            return
        found = self._pending.pop(event.rid, None)
        if found is None:
            return  # cancelled by its caller meanwhile
        if isinstance(event, wire.Failed):
            found.listener.finish(wire.error_from_wire(event))
            return
        try:
            found.listener.finish(wire.output_from_wire(event))
        except ValueError:
            found.listener.finish(InternalError("the engine's result did not decode"))
            raise

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
