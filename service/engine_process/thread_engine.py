"""`engine_mode: thread`: each model's EngineCore runs on a thread of the server process.

The engine thread reaches asyncio only through the request listeners of
`async_bridge` (call_soon_threadsafe). Kept beside the engine process because it starts
in no time and lets tests wrap a model's runtime in place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from service.engine.core import EngineCore, EngineObserver
from service.engine.policy import make_policy
from service.engine.queue import RequestQueue
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.requests import Request
from service.engine.runtime import RuntimeOptions
from service.engine_process.backend import BatchingConfig, ModelEngine, PreparedModel, ServedBundle
from service.engine_process.engine_thread import EngineThread


class ThreadEngine:
    """ModelEngine over one EngineCore and its EngineThread."""

    def __init__(self, core: EngineCore, thread: EngineThread) -> None:
        self.core = core
        self.thread = thread

    @property
    def available(self) -> bool:
        return not self.core.queue.closed

    def submit(self, request: Request) -> None:
        self.core.submit(request)

    def cancel(self, request: Request) -> None:
        request.cancel()

    def retire(self) -> None:
        self.core.queue.close()

    def is_idle(self) -> bool:
        return self.thread.finished

    async def wait_idle(self, timeout: float) -> bool:
        return await asyncio.to_thread(self.thread.join, timeout)

    async def stop(self, timeout: float) -> None:
        await asyncio.to_thread(self.thread.stop, timeout)


@dataclass(frozen=True)
class ThreadPrepared:
    loaded: LoadedBundle
    batching: BatchingConfig

    @property
    def bundle(self) -> ServedBundle:
        return ServedBundle.of(self.loaded)

    def start(self, observer: EngineObserver) -> ModelEngine:
        config = self.batching
        core = EngineCore(
            self.loaded.runtime,
            make_policy(config.policy, config.policy_config),
            RequestQueue(config.max_queue_size, observer),
            observer,
        )
        manifest = self.loaded.manifest
        thread = EngineThread(core, f"{manifest.name}-v{manifest.version}")
        thread.start()
        return ThreadEngine(core, thread)

    def discard(self) -> None:
        return None  # the sessions go with the last reference


class ThreadBackend:
    """Loads bundles into this process; each served model gets its own engine thread."""

    def __init__(self, options: RuntimeOptions, batching: BatchingConfig) -> None:
        self._options = options
        self._batching = batching

    async def load(self, bundle_dir: Path) -> PreparedModel:
        loaded = await asyncio.to_thread(load_bundle, bundle_dir, self._options)
        return ThreadPrepared(loaded, self._batching)

    async def close(self) -> None:
        return None

    def engine_pids(self) -> dict[str, int]:
        return {}
