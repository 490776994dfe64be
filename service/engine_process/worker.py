"""The engine-core process: batching policy, onnxruntime sessions and decode loop of one
model group behind a ZMQ socket. No gRPC, no asyncio, no Prometheus.

    python -m service.engine_process.worker   (a WorkerConfig as one JSON line on stdin)

The server starts it (service/serving/engine_process.py) and talks to it over one ROUTER
socket on an ipc:// path in a private folder; any number of front-end processes connect
to it (DEALER), and each request's events go back to the front end that sent it. Threads:
- the main thread owns the ROUTER socket: it takes requests, cancellations, loads and
  pings, and forwards what the engine threads produced;
- one EngineThread per loaded bundle runs EngineCore.step(); after each step it sends what
  the step produced (tokens, results, errors, metric observations) as one message per
  front end through its own inproc socket to the main thread (ZMQ sockets are not shared
  between threads);
- a loading thread per Load, so that opening sessions never stalls the heartbeat.
The process exits when its parent is gone: PR_SET_PDEATHSIG(SIGKILL) asks the kernel to
kill it, and end-of-file on stdin (the parent's pipe) says the same where that is missed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import zmq

from service.engine.core import EngineCore
from service.engine.policy import make_policy
from service.engine.queue import RequestQueue
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.requests import GenerationOutput, Request, RequestStatus, TokenEvent
from service.engine_process import wire
from service.engine_process.engine_thread import EngineThread
from service.errors import ServiceError, Unavailable
from service.lifeline import die_with_parent, parent_gone
from service.logging_setup import configure_logging

log = logging.getLogger("service.engine_process.worker")  # also when run as __main__

_OUTBOX = "inproc://engine-outbox"
_POLL_MS = 500  # the main loop's longest sleep: how often it notices a dead parent


class Outbox:
    """What one engine thread's step produced, sent as one message per front end.

    Used only by its own thread (the socket is created there on first use).
    """

    def __init__(self, context: zmq.Context, supervisor: list[bytes]) -> None:
        self._context = context
        self._supervisor = supervisor  # [identity] once the supervisor said hello
        self._events: dict[bytes, list[wire.Event]] = {}
        self._observations: list[wire.Observation] = []
        self._control: list[msgspec.Struct] = []
        self._socket: zmq.Socket | None = None

    def event(self, identity: bytes, event: wire.Event) -> None:
        self._events.setdefault(identity, []).append(event)

    def observe(self, observation: wire.Observation) -> None:
        self._observations.append(observation)

    def control(self, message: msgspec.Struct) -> None:
        """A message for the supervisor, sent after this step's events."""
        self._control.append(message)

    def flush(self) -> None:
        if not (self._events or self._observations or self._control):
            return
        if self._socket is None:
            self._socket = self._context.socket(zmq.PUSH)
            self._socket.setsockopt(zmq.LINGER, 1000)
            self._socket.connect(_OUTBOX)
        supervisor = self._supervisor[0] if self._supervisor else None
        observations = tuple(self._observations)
        for identity, events in self._events.items():
            mine = observations if identity == supervisor else ()
            self._socket.send_multipart([identity, wire.encode(wire.Batch(tuple(events), mine))])
            if mine:
                observations = ()
        if supervisor is not None:
            if observations:
                self._socket.send_multipart([supervisor, wire.encode(wire.Batch((), observations))])
            for message in self._control:
                self._socket.send_multipart([supervisor, wire.encode(message)])
        self._events.clear()
        self._observations.clear()
        self._control.clear()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()


class _Listener:
    """A request's RequestListener inside the engine: events go to its front end."""

    __slots__ = ("_identity", "_outbox", "_registry", "_rid", "_stream")

    def __init__(
        self,
        identity: bytes,
        rid: str,
        stream: bool,
        outbox: Outbox,
        registry: dict[str, Request],
    ) -> None:
        self._identity = identity
        self._rid = rid
        self._stream = stream
        self._outbox = outbox
        self._registry = registry

    def on_token(self, event: TokenEvent) -> None:
        if self._stream:
            self._outbox.event(
                self._identity,
                wire.Token(self._rid, event.index, event.token_id, event.log_prob),
            )

    def on_finish(self, output: GenerationOutput) -> None:
        self._registry.pop(self._rid, None)
        self._outbox.event(self._identity, wire.finished_message(self._rid, output))

    def on_error(self, error: ServiceError) -> None:
        self._registry.pop(self._rid, None)
        self._outbox.event(self._identity, wire.failed_message(self._rid, error))


class _ForwardingObserver:
    """EngineObserver that queues each call for the supervisor's metrics."""

    def __init__(self, slot: int, outbox: Outbox) -> None:
        self._slot = slot
        self._outbox = outbox
        self._depth: tuple[int, int] | None = None  # the last (waiting, running) sent

    def encoder_batch(self, size: int, seconds: float, tokens: int) -> None:
        self._outbox.observe(wire.EncoderRun(self._slot, size, seconds, tokens))

    def decoder_step(self, size: int, seconds: float) -> None:
        self._outbox.observe(wire.DecoderStep(self._slot, size, seconds))

    def request_admitted(self, queue_seconds: float) -> None:
        self._outbox.observe(wire.Admitted(self._slot, queue_seconds))

    def request_finished(self, status: RequestStatus, output_tokens: int) -> None:
        self._outbox.observe(wire.Left(self._slot, int(status), output_tokens))

    def queue_depth(self, waiting: int, running: int) -> None:
        if self._depth != (waiting, running):  # gauges: only a change is news
            self._depth = (waiting, running)
            self._outbox.observe(wire.Depth(self._slot, waiting, running))

    def queue_changed(self, waiting: int) -> None:
        # Called on whichever thread submits; the end-of-step queue_depth reports it.
        del waiting

    def model_failure(self) -> None:
        self._outbox.observe(wire.Failure(self._slot))


@dataclass
class _Slot:
    bundle: LoadedBundle
    core: EngineCore
    thread: EngineThread
    outbox: Outbox


class Worker:
    def __init__(self, config: wire.WorkerConfig) -> None:
        self.config = config
        self.context = zmq.Context()
        # Every socket of this context drops unsent messages when closed, so a context that
        # is terminated (or garbage-collected) with a peer gone never blocks in term().
        self.context.setsockopt(zmq.LINGER, 0)
        self.slots: dict[int, _Slot] = {}  # slot number -> loaded bundle and its thread
        self.requests: dict[str, Request] = {}  # rid -> waiting or running (to cancel it)
        self.supervisor: list[bytes] = []  # [identity of front end 0] once it said hello
        self.dropped = 0  # undecodable messages not yet reported
        self.drops_total = 0
        self.stopping = False
        self._router = self.context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)

    def run(self) -> int:
        router = self._router
        router.bind(self.config.address)
        outbox = self.context.socket(zmq.PULL)
        outbox.setsockopt(zmq.LINGER, 0)
        outbox.bind(_OUTBOX)
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(outbox, zmq.POLLIN)
        poller.register(sys.stdin.fileno(), zmq.POLLIN)
        log.info("engine %s ready on %s", self.config.group, self.config.address)
        while not self.stopping:
            ready = dict(poller.poll(_POLL_MS))
            if sys.stdin.fileno() in ready and parent_gone(sys.stdin.fileno()):
                log.warning("engine %s: the server process is gone; exiting", self.config.group)
                os._exit(0)
            if outbox in ready:
                while True:
                    try:
                        router.send_multipart(outbox.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if router in ready:
                while not self.stopping:
                    try:
                        identity, payload = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    except ValueError:  # not two frames: not ours
                        self._drop()
                        continue
                    self._handle(identity, payload)
            if self.dropped and self.supervisor:
                self._reply(self.supervisor[0], wire.Batch((), (wire.Dropped(self.dropped),)))
                self.dropped = 0
        self._shutdown(outbox)
        return 0

    # --- messages ----------------------------------------------------------------------
    def _reply(self, identity: bytes, message: msgspec.Struct) -> None:
        self._router.send_multipart([identity, wire.encode(message)])

    def _drop(self) -> None:
        self.dropped += 1
        self.drops_total += 1
        if self.drops_total in (1, 10, 100) or self.drops_total % 1000 == 0:
            log.warning(
                "engine %s dropped an undecodable message (%d so far)",
                self.config.group,
                self.drops_total,
            )

    def _handle(self, identity: bytes, payload: bytes) -> None:
        message = wire.decode_to_engine(payload)
        if message is None:
            self._drop()
        elif isinstance(message, wire.Submitted):
            self._submit(identity, message)
        elif isinstance(message, wire.Cancel):
            request = self.requests.get(message.rid)
            if request is not None:
                request.cancel()
        elif isinstance(message, wire.Ping):
            now = time.monotonic()
            busy = tuple((n, s.thread.busy_seconds(now)) for n, s in list(self.slots.items()))
            self._reply(identity, wire.Pong(message.seq, message.sent, busy))
        elif isinstance(message, wire.Hello):
            if message.frontend == 0 and not self.supervisor:  # the first one: the server
                self.supervisor[:] = [identity]
            self._reply(identity, wire.Ready(os.getpid(), self.config.group))
        elif isinstance(message, wire.Load):
            threading.Thread(
                target=self._load, args=(message,), name=f"load-{message.slot}", daemon=True
            ).start()
        elif isinstance(message, wire.Retire):
            slot = self.slots.get(message.slot)
            if slot is None:
                self._reply(identity, wire.Stopped(message.slot))
            else:
                slot.core.queue.close()
                slot.core.queue.wake()
        elif isinstance(message, wire.StopSlot):
            slot = self.slots.get(message.slot)
            if slot is None:
                self._reply(identity, wire.Stopped(message.slot))
            else:
                slot.thread.request_stop()
        elif isinstance(message, wire.Shutdown):
            self.stopping = True

    def _submit(self, identity: bytes, message: wire.Submitted) -> None:
        slot = self.slots.get(message.slot)
        if slot is None:
            error: ServiceError = Unavailable("the model is not loaded in its engine process")
            self._reply(identity, wire.Batch((wire.failed_message(message.rid, error),), ()))
            return
        listener = _Listener(identity, message.rid, message.stream, slot.outbox, self.requests)
        request = wire.request_from_submit(message, listener)
        self.requests[message.rid] = request
        try:
            slot.core.submit(request)
        except ServiceError as error:  # the queue is full or closed: answered at once
            self.requests.pop(message.rid, None)
            self._reply(identity, wire.Batch((wire.failed_message(message.rid, error),), ()))

    def _load(self, message: wire.Load) -> None:
        """On a loading thread: open the sessions, start the slot's engine thread."""
        config = self.config
        push = self.context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(_OUTBOX)
        reply: msgspec.Struct
        try:
            bundle = load_bundle(Path(message.path), config.runtime)
        except Exception as exc:  # BundleError, or whatever onnxruntime raised
            reply = wire.Refused(message.slot, str(exc) or type(exc).__name__)
        else:
            self._start_slot(message.slot, bundle)
            reply = wire.Loaded(message.slot, bundle.runtime.provider)
        if self.supervisor:
            push.send_multipart([self.supervisor[0], wire.encode(reply)])
        push.close()

    def _start_slot(self, number: int, bundle: LoadedBundle) -> None:
        config = self.config
        outbox = Outbox(self.context, self.supervisor)
        observer = _ForwardingObserver(number, outbox)
        core = EngineCore(
            bundle.runtime,
            make_policy(config.policy, config.policy_config),
            RequestQueue(config.max_queue_size),
            observer,
        )

        def exited() -> None:
            self.slots.pop(number, None)
            outbox.control(wire.Stopped(number))
            outbox.flush()
            outbox.close()

        name = f"{bundle.manifest.name}-v{bundle.manifest.version}"
        thread = EngineThread(core, name, after_step=outbox.flush, on_exit=exited)
        self.slots[number] = _Slot(bundle, core, thread, outbox)
        thread.start()
        log.info(
            "engine %s serving %s (slot %d) on %s",
            config.group,
            name,
            number,
            bundle.runtime.provider,
        )

    def _shutdown(self, outbox: zmq.Socket) -> None:
        """Refuse what is left, give the threads a moment to send it, close."""
        for slot in list(self.slots.values()):
            slot.thread.request_stop()
        deadline = time.monotonic() + 2.0
        for slot in list(self.slots.values()):
            slot.thread.join(max(0.0, deadline - time.monotonic()))
        while True:
            try:
                self._router.send_multipart(outbox.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        outbox.close()
        self._router.close()
        if self.slots:  # a thread stuck in a step still holds its socket: do not wait on it
            log.warning(
                "engine %s: %d model thread(s) still busy; exiting",
                self.config.group,
                len(self.slots),
            )
            os._exit(0)
        self.context.term()


def main() -> int:
    line = sys.stdin.buffer.readline()
    try:
        config = msgspec.json.decode(line, type=wire.WorkerConfig)
    except msgspec.DecodeError as exc:
        print(f"seq2seq engine: bad configuration on stdin: {exc}", file=sys.stderr)
        return 2
    die_with_parent(config.parent_pid)
    configure_logging(config.log_level, config.log_format)  # type: ignore[arg-type]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return Worker(config).run()


if __name__ == "__main__":
    sys.exit(main())
