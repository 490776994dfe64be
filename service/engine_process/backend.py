"""What the data plane needs of an engine: the interface both backends (engine threads,
engine processes) implement, and what a front end knows of a loaded bundle.

Kept here, below `serving/`, so that the engine-process package never imports the data
plane: the model table (serving/models.py) holds `ServedBundle`s and `ModelEngine`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from service.bundle import BundleManifest, read_manifest
from service.engine.core import EngineObserver
from service.engine.policy import PolicyConfig
from service.engine.repository import LoadedBundle, load_tokenizer
from service.engine.requests import Request
from service.engine.tokenizer import Tokenizer


@dataclass(frozen=True)
class BatchingConfig:
    policy: str  # "continuous" | "static" (service.engine.policy.POLICIES)
    max_queue_size: int  # waiting requests per model before RESOURCE_EXHAUSTED
    policy_config: PolicyConfig


@dataclass(frozen=True)
class ServedBundle:
    """What the front end knows of a bundle: enough to validate, tokenize and describe."""

    manifest: BundleManifest
    path: Path  # the bundle folder
    tokenizer: Tokenizer
    provider: str  # the execution provider its sessions really got, e.g. CPUExecutionProvider

    @property
    def key(self) -> tuple[str, int]:
        return (self.manifest.name, self.manifest.version)

    @staticmethod
    def of(loaded: LoadedBundle) -> ServedBundle:
        return ServedBundle(loaded.manifest, loaded.path, loaded.tokenizer, loaded.runtime.provider)


def read_served_bundle(bundle_dir: Path, provider: str) -> ServedBundle:
    """What a front end needs of a bundle an engine process loaded: its manifest and
    tokenizer (blocking: run it on a worker thread)."""
    manifest = read_manifest(bundle_dir)
    return ServedBundle(manifest, bundle_dir, load_tokenizer(bundle_dir, manifest), provider)


class ModelEngine(Protocol):
    """Where one served model's requests are decoded (engine_process/thread_engine.py,
    engine_process/supervisor.py). Every method runs on the event loop."""

    @property
    def available(self) -> bool:
        """It takes requests now (False while its engine process restarts)."""
        ...

    def submit(self, request: Request) -> None:
        """Queue a request; a full queue, a retired model or a down engine raise at once
        (or answer the request's listener with the error as soon as the engine does)."""
        ...

    def cancel(self, request: Request) -> None:
        """The caller went away: drop the request at the engine's next step."""
        ...

    def retire(self) -> None:
        """Refuse new requests; queued and running ones finish."""
        ...

    def is_idle(self) -> bool:
        """Retired and nothing left: its engine let go of it."""
        ...

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (at most `timeout`) for a retired model to finish; True when it did."""
        ...

    async def stop(self, timeout: float) -> None:
        """Refuse whatever is still queued or running (UNAVAILABLE); wait at most
        `timeout` for the engine to let go."""
        ...


class PreparedModel(Protocol):
    """A bundle its engine has loaded, not yet routed to."""

    @property
    def bundle(self) -> ServedBundle: ...

    def start(self, observer: EngineObserver) -> ModelEngine:
        """Begin serving; the engine reports to `observer`."""
        ...

    def discard(self) -> None:
        """It will never be served (refused after loading): release it."""
        ...
