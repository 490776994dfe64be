"""One front end's connection to one engine-core process: requests out, events in.

A DEALER socket (zmq.asyncio) on the event loop. `submit` registers the request's
listener and sends it without blocking; the receive task decodes each step batch and
hands token events, results and errors straight to the listeners (we are on their loop:
no thread hop), and everything else (observations, control answers) to its owner. What
does not decode is dropped and counted. When the process is gone, `fail_all` ends every
request still waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import msgspec
import zmq
import zmq.asyncio

from service.engine.requests import Request, TokenEvent
from service.engine_process import wire
from service.engine_process.async_bridge import LoopListener
from service.errors import InternalError, Overloaded, ServiceError

log = logging.getLogger(__name__)

_SEND_HWM = 100_000  # messages queued towards one engine before submit refuses


class DropCounter(Protocol):
    def ipc_dropped(self, side: str, count: int) -> None: ...


@dataclass(frozen=True)
class _Pending:
    listener: LoopListener
    slot: int


class EngineLink:
    def __init__(
        self,
        name: str,
        context: zmq.asyncio.Context,
        address: str,
        frontend: int,
        drops: DropCounter,
        on_message: Callable[[wire.FromEngine], None],
        on_observation: Callable[[wire.Observation], None],
    ) -> None:
        """`on_message` gets every message but step batches; `on_observation` every
        metric observation (only the supervisor, front end 0, is sent any)."""
        self.name = name
        self.address = address
        self._drops = drops
        self._on_message = on_message
        self._on_observation = on_observation
        self._pending: dict[str, _Pending] = {}
        self._dropped = 0
        socket = context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, _SEND_HWM)
        socket.setsockopt(zmq.RCVHWM, 0)
        socket.connect(address)
        self._socket: zmq.asyncio.Socket | None = socket
        self._receiver = asyncio.get_running_loop().create_task(self._receive(socket))
        self.send(wire.Hello(frontend))

    # --- out -----------------------------------------------------------------------------
    def send(self, message: msgspec.Struct) -> None:
        """Send without blocking; raises zmq.ZMQError when closed or full."""
        socket = self._socket
        if socket is None:
            raise zmq.ZMQError(zmq.ENOTCONN, "the engine link is closed")
        sent = cast("asyncio.Future[None]", socket.send(wire.encode(message), zmq.NOBLOCK))
        error = sent.exception() if sent.done() else None  # NOBLOCK: done at once
        if error is not None:
            raise error

    def submit(self, slot: int, request: Request) -> None:
        listener = request.listener
        assert isinstance(listener, LoopListener)
        self._pending[request.request_id] = _Pending(listener, slot)
        try:
            self.send(wire.submit_message(slot, request, listener.stream))
        except zmq.ZMQError as exc:
            self._pending.pop(request.request_id, None)
            raise Overloaded(
                "the engine's input is full; retry with backoff or send to another replica"
            ) from exc

    def cancel(self, rid: str) -> None:
        if self._pending.pop(rid, None) is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.send(wire.Cancel(rid))

    def waiting_on(self, slot: int) -> int:
        """Requests of `slot` sent and not yet answered."""
        return sum(1 for p in self._pending.values() if p.slot == slot)

    # --- ends ------------------------------------------------------------------------------
    def fail(self, error: ServiceError, slot: int | None = None) -> int:
        """End every waiting request (of `slot`, or all) with `error`; how many."""
        gone = [rid for rid, p in self._pending.items() if slot is None or p.slot == slot]
        for rid in gone:
            self._pending.pop(rid).listener.finish(error)
        return len(gone)

    def close(self) -> None:
        self._receiver.cancel()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    # --- in ------------------------------------------------------------------------------
    async def _receive(self, socket: zmq.asyncio.Socket) -> None:
        while True:
            raw = await socket.recv()
            message = wire.decode_from_engine(raw)
            if message is None:
                self._drop()
                continue
            try:
                if isinstance(message, wire.Batch):
                    for event in message.events:
                        self._deliver(event)
                    for observation in message.observations:
                        self._on_observation(observation)
                else:
                    self._on_message(message)
            except ValueError:  # an array that does not match its shape, a bad status
                self._drop()

    def _drop(self) -> None:
        self._drops.ipc_dropped("frontend", 1)
        self._dropped += 1
        if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:  # counted, not flooded
            log.warning(
                "dropped an undecodable message from engine process %s (%d so far)",
                self.name,
                self._dropped,
            )

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
