"""Where served models are decoded: engine threads of this process, or engine processes.

Both backends load a bundle folder into a PreparedModel (serving/models.py) that the model
table starts; everything above them (data plane, reload, drain) is the same.

`engine_mode: process` (ProcessBackend): one engine-core process per model group
(`engine_groups` maps a model name to a group; every other model is in group "default",
so by default ONE process holds every model: on a CPU host its engine threads share the
cores anyway, and one process keeps one copy of the runtime). The front end reads only a
bundle's manifest and tokenizer; the engine process checks the checksums and the graphs
and opens the sessions.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zmq.asyncio

from service.bundle import read_manifest
from service.engine.core import EngineObserver
from service.engine.runtime import RuntimeOptions
from service.engine_process import wire
from service.engine_process.backend import (
    BatchingConfig,
    ModelEngine,
    PreparedModel,
    ServedBundle,
    read_served_bundle,
)
from service.engine_process.supervisor import (
    EngineGroup,
    EngineProcessObserver,
    ProcessEngine,
    SupervisionOptions,
)
from service.engine_process.thread_engine import ThreadBackend

DEFAULT_GROUP = "default"


class EngineBackend(Protocol):
    async def load(self, bundle_dir: Path) -> PreparedModel:
        """Check and load a bundle; raises BundleError (or onnxruntime's errors)."""
        ...

    async def close(self) -> None:
        """After the models drained: stop every engine."""
        ...

    def engine_pids(self) -> dict[str, int]:
        """Running engine processes by group (empty in thread mode)."""
        ...


@dataclass(frozen=True)
class ProcessPrepared:
    bundle: ServedBundle
    group: EngineGroup
    slot: int

    def start(self, observer: EngineObserver) -> ModelEngine:
        self.group.attach(self.slot, observer)
        return ProcessEngine(self.group, self.slot)

    def discard(self) -> None:
        self.group.stop_slot(self.slot)


@dataclass(frozen=True)
class ProcessSettings:
    runtime: RuntimeOptions
    batching: BatchingConfig
    groups: Mapping[str, str]  # model name -> group name (others: DEFAULT_GROUP)
    supervision: SupervisionOptions
    log_level: str
    log_format: str


class ProcessBackend:
    """One engine-core process per model group, started when its first bundle loads."""

    def __init__(
        self,
        settings: ProcessSettings,
        observer: EngineProcessObserver,
        on_change: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._observer = observer
        self._on_change = on_change
        self._run_dir = Path(tempfile.mkdtemp(prefix="seq2seq-engines-"))  # 0700: ours only
        self._context = zmq.asyncio.Context()
        # Every socket of this context drops unsent messages when closed, so a context that
        # is terminated (or garbage-collected) with a peer gone never blocks in term().
        self._context.setsockopt(zmq.LINGER, 0)
        self._groups: dict[str, EngineGroup] = {}
        self._slots = itertools.count(1)

    def _config(self, group: str) -> Callable[[str], wire.WorkerConfig]:
        settings = self._settings

        def config(address: str) -> wire.WorkerConfig:
            return wire.WorkerConfig(
                group=group,
                address=address,
                parent_pid=os.getpid(),
                runtime=settings.runtime,
                policy=settings.batching.policy,
                max_queue_size=settings.batching.max_queue_size,
                policy_config=settings.batching.policy_config,
                log_level=settings.log_level,
                log_format=settings.log_format,
            )

        return config

    def group(self, name: str) -> EngineGroup:
        group = self._groups.get(name)
        if group is None:
            group = EngineGroup(
                name,
                self._config(name),
                self._run_dir,
                self._context,
                self._settings.supervision,
                self._observer,
                self._on_change,
            )
            self._groups[name] = group
        return group

    async def load(self, bundle_dir: Path) -> PreparedModel:
        manifest = await asyncio.to_thread(read_manifest, bundle_dir)
        group = self.group(self._settings.groups.get(manifest.name, DEFAULT_GROUP))
        slot = next(self._slots)
        provider = await group.load(slot, bundle_dir)
        try:
            bundle = await asyncio.to_thread(read_served_bundle, bundle_dir, provider)
        except BaseException:
            group.stop_slot(slot)
            raise
        return ProcessPrepared(bundle, group, slot)

    async def close(self) -> None:
        """Stop every engine process (again: nothing; a failed start and its drain both
        close)."""
        if self._context.closed:
            return
        # An engine that does not stop within the heartbeat timeout counts as hung: killed.
        timeout = self._settings.supervision.heartbeat_timeout
        await asyncio.gather(*(group.close(timeout) for group in self._groups.values()))
        self._context.destroy(linger=0)  # closes any socket still open
        shutil.rmtree(self._run_dir, ignore_errors=True)

    def engine_pids(self) -> dict[str, int]:
        return {name: pid for name, group in self._groups.items() if (pid := group.pid) is not None}

    def groups(self) -> dict[str, EngineGroup]:
        return dict(self._groups)


def make_backend(
    mode: str,
    settings: ProcessSettings,
    observer: EngineProcessObserver,
    on_change: Callable[[], None],
) -> EngineBackend:
    if mode == "thread":
        return ThreadBackend(settings.runtime, settings.batching)
    return ProcessBackend(settings, observer, on_change)
