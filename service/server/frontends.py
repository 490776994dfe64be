"""Several front-end processes on one gRPC port (`frontend_processes`).

The server process is front end 0 (the supervisor: model repository, engine processes,
/metrics). `FrontendPool` starts front ends 1..N-1 as `python -m service.server.follower_main`
on the same port (gRPC sets SO_REUSEPORT, so the kernel spreads new connections over
every process listening on it), tells them the model table over a control socket
(service/serving/follower.py), adds their metric snapshots into /metrics, restarts one
that dies, and on drain sends them SIGTERM and waits for them before the engines stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio

from service.engine_process.supervisor import (
    ProcessEngine,
    child_environment,
    describe_exit,
    watch_exit,
)
from service.metrics_merge import MetricsSnapshot, RemoteFrontends
from service.server.follower import (
    FrontendHello,
    FrontendServing,
    FrontendTable,
    TableGroup,
    TableModel,
    decode_to_supervisor,
    encode,
)
from service.serving.models import ServedModel
from service.settings import Settings

log = logging.getLogger(__name__)


class FollowerConfig(msgspec.Struct):
    """What a follower front end is told on its stdin (one JSON line)."""

    index: int  # 1..N-1
    port: int  # the supervisor's bound gRPC port
    control: str  # ipc:// endpoint of the supervisor's control socket
    parent_pid: int
    settings: dict[str, Any]  # the supervisor's Settings, as JSON


@dataclass(frozen=True)
class FollowerRole:
    """How a Seq2SeqServer knows it is follower front end `index`."""

    index: int
    control: str


def frontend_table(models: list[ServedModel], groups: dict[str, tuple[str, bool]]) -> FrontendTable:
    """The table followers serve: `groups` is group name -> (address, up)."""
    return FrontendTable(
        groups=tuple(TableGroup(name, address, up) for name, (address, up) in groups.items()),
        models=tuple(
            TableModel(m.engine.slot, m.engine.group.name, str(m.bundle.path), m.provider)
            for m in models
            if isinstance(m.engine, ProcessEngine)
        ),
    )


class FrontendPool:
    def __init__(self, settings: Settings, remote: RemoteFrontends, count: int) -> None:
        self._settings = settings
        self._remote = remote
        self._count = count  # front ends in all, this one included
        self._run_dir = Path(tempfile.mkdtemp(prefix="seq2seq-frontends-"))  # 0700: ours only
        self._address = f"ipc://{self._run_dir}/control.sock"
        self._context = zmq.asyncio.Context()
        # Every socket of this context drops unsent messages when closed, so a context that
        # is terminated (or garbage-collected) with a peer gone never blocks in term().
        self._context.setsockopt(zmq.LINGER, 0)
        self._socket: zmq.asyncio.Socket | None = None
        self._identities: dict[int, bytes] = {}
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._exited: dict[int, asyncio.Event] = {}
        self._serving: dict[int, asyncio.Event] = {}
        self._table = FrontendTable((), ())
        self._port = 0
        self._draining = False
        self._tasks: set[asyncio.Task[None]] = set()

    def pids(self) -> dict[int, int]:
        return {index: p.pid for index, p in self._processes.items() if p.poll() is None}

    async def start(self, port: int, table: FrontendTable) -> None:
        self._port = port
        self._table = table
        socket = self._context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(self._address)
        self._socket = socket
        self._spawn_task(self._receive(socket))
        for index in range(1, self._count):
            self._spawn(index)
        waits = [asyncio.ensure_future(e.wait()) for e in self._serving.values()]
        _, late = await asyncio.wait(waits, timeout=self._settings.engine_start_timeout)
        for wait in late:
            wait.cancel()
        log.info(
            "%d more front-end process(es) serving on port %d%s",
            self._count - 1 - len(late),
            port,
            f"; {len(late)} did not start in time" if late else "",
        )

    def publish(self, table: FrontendTable) -> None:
        """Send the current table to every follower (they apply it in order)."""
        self._table = table
        for index in list(self._identities):
            self._send(index)

    def terminate(self) -> None:
        """Drain: SIGTERM every follower; each finishes its own calls and exits."""
        self._draining = True
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float) -> None:
        """Wait for every follower to exit (SIGKILL after `timeout`)."""
        waits = [e.wait() for e in self._exited.values()]
        if not waits:
            return
        _, pending = await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=timeout)
        for task in pending:
            task.cancel()
        for process in self._processes.values():
            if process.poll() is None:
                log.warning(
                    "front end pid %d still busy after %.1f s; killing it", process.pid, timeout
                )
                process.kill()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._socket is not None:
            self._socket.close(linger=0)
        self._context.destroy(linger=0)  # closes any socket still open
        shutil.rmtree(self._run_dir, ignore_errors=True)

    # --- followers ---------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        config = FollowerConfig(
            index=index,
            port=self._port,
            control=self._address,
            parent_pid=os.getpid(),
            settings=self._settings.model_dump(mode="json"),
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "service.server.follower_main"],
            stdin=subprocess.PIPE,
            env=child_environment(),
        )
        assert process.stdin is not None
        process.stdin.write(msgspec.json.encode(config) + b"\n")
        process.stdin.flush()  # the pipe stays open: the follower exits at its end of file
        self._processes[index] = process
        self._exited[index] = asyncio.Event()
        self._serving[index] = asyncio.Event()
        poller = watch_exit(process, lambda status: self._gone(index, process, status))
        if poller is not None:
            self._tasks.add(poller)

    def _gone(self, index: int, process: subprocess.Popen[bytes], status: int | None) -> None:
        if self._processes.get(index) is not process:
            return
        self._remote.retire(index)
        self._identities.pop(index, None)
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        self._exited[index].set()
        if self._draining:
            log.info(
                "front end %d (pid %d) stopped (%s)", index, process.pid, describe_exit(status)
            )
            return
        log.error(
            "front end %d (pid %d) %s; starting it again in %.1f s",
            index,
            process.pid,
            describe_exit(status),
            self._settings.engine_restart_backoff,
            extra={"exit_status": status},
        )

        async def restart() -> None:
            await asyncio.sleep(self._settings.engine_restart_backoff)
            if not self._draining:
                self._spawn(index)

        self._spawn_task(restart())

    def _spawn_task(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the control socket ------------------------------------------------------------------
    def _send(self, index: int) -> None:
        identity = self._identities.get(index)
        if identity is None or self._socket is None:
            return
        with contextlib.suppress(zmq.ZMQError):
            self._socket.send_multipart([identity, encode(self._table)], zmq.NOBLOCK)

    async def _receive(self, socket: zmq.asyncio.Socket) -> None:
        while True:
            frames = await socket.recv_multipart()
            message = decode_to_supervisor(frames[-1]) if len(frames) == 2 else None
            if isinstance(message, FrontendHello):
                self._identities[message.index] = frames[0]
                self._send(message.index)
            elif isinstance(message, FrontendServing):
                self._serving[message.index].set()
            elif isinstance(message, MetricsSnapshot):
                self._remote.update(message.index, message.families)
            else:
                log.warning("dropped an undecodable message on the front-end control socket")
