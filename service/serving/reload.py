"""Keep the served model table in step with the repository folder (hot reload).

`ModelRepository.sync()` rescans `<name>/<version>/` folders: new bundles are loaded
and served, changed ones (their checksums differ) replace the served version, deleted
ones stop being served. Scanning runs on a worker thread and loading in the engine
backend (a worker thread, or the engine process); the table changes on the event loop,
so a request picks its model and joins its queue in one step and never meets a
half-updated table. A replaced or removed version is retired: its queue closes (new
requests go to the table's current versions), its queued and running requests finish,
then its engine lets go of it. A bundle that fails its checks is refused and reported;
the others keep serving (a changed bundle that fails keeps its previous, verified
version in service).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from service import bundle as contract
from service.engine.core import EngineObserver
from service.engine.repository import Fingerprint, bundle_dirs, bundle_fingerprint
from service.engine_process.backend import PreparedModel, ServedBundle
from service.engine_process.backends import EngineBackend
from service.serving.data_plane import DataPlane
from service.serving.models import ModelTable, ServedModel

log = logging.getLogger(__name__)

ReloadResult = Literal["added", "replaced", "removed", "refused"]
CUDA_PROVIDER = "CUDAExecutionProvider"


class RepositoryObserver(Protocol):
    """What model operations report; `service.metrics` implements it with Prometheus."""

    def engine_observer(self, bundle: ServedBundle) -> EngineObserver: ...

    def model_served(self, bundle: ServedBundle) -> None: ...

    def model_unserved(self, bundle: ServedBundle) -> None: ...

    def engine_stopped(self, bundle: ServedBundle) -> None: ...

    def reload_result(self, result: ReloadResult) -> None: ...

    def repository_state(self, served: int, refused: int) -> None: ...


@dataclass(frozen=True)
class SyncReport:
    added: tuple[tuple[str, int], ...] = ()  # (name, version) now served
    replaced: tuple[tuple[str, int], ...] = ()  # served again from changed files
    removed: tuple[tuple[str, int], ...] = ()  # no longer served
    refused: dict[str, str] = field(default_factory=dict)  # bundle folder -> why (this pass)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.removed or self.refused)


@dataclass(frozen=True)
class _Plan:
    """What one scan found; computed off the event loop, applied on it."""

    load: tuple[tuple[Path, Fingerprint, PreparedModel], ...]  # new or changed, loaded
    same: tuple[tuple[Path, Fingerprint], ...]  # files touched, checksums unchanged
    gone: tuple[Path, ...]  # served folders that disappeared
    refused: tuple[tuple[Path, Fingerprint, str], ...]  # folder, stamp, why
    root_missing: bool


class ModelRepository:
    """One repository folder served through one DataPlane's model table."""

    def __init__(
        self,
        root: Path,
        backend: EngineBackend,
        plane: DataPlane,
        observer: RepositoryObserver,
        retire_grace: float,
        require_gpu: bool = False,
    ) -> None:
        self._root = root
        self._backend = backend
        self._plane = plane
        self._observer = observer
        self._retire_grace = retire_grace
        self.require_gpu = require_gpu
        self._served: dict[Path, tuple[Fingerprint, ServedBundle]] = {}
        self._refused: dict[Path, tuple[Fingerprint, str]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    @property
    def table(self) -> ModelTable:
        return self._plane.models

    @property
    def refused(self) -> dict[str, str]:
        """Bundle folders currently refused, with the reason."""
        return {str(path): why for path, (_, why) in self._refused.items()}

    async def sync(self) -> SyncReport:
        """Rescan once and apply what changed; concurrent calls run one after the other."""
        async with self._lock:
            plan = await self._plan()
            report = self._apply(plan)
        self._observer.repository_state(len(self.table.all()), len(self._refused))
        return report

    async def wait_retired(self, timeout: float) -> None:
        """Wait for retiring versions to finish their requests (used when draining)."""
        if self._retiring:
            await asyncio.wait(set(self._retiring), timeout=timeout)

    # --- scanning (worker thread) and loading (engine backend) -----------------------------
    async def _plan(self) -> _Plan:
        scan = await asyncio.to_thread(self._scan)
        if scan is None:
            return _Plan((), (), (), (), root_missing=True)
        candidates, same, refused, gone = scan
        load: list[tuple[Path, Fingerprint, PreparedModel]] = []
        for bundle_dir, stamp in candidates:
            try:
                load.append((bundle_dir, stamp, await self._load(bundle_dir)))
            except Exception as exc:  # BundleError, or whatever onnxruntime raised
                refused.append((bundle_dir, stamp, str(exc) or type(exc).__name__))
        return _Plan(tuple(load), tuple(same), gone, tuple(refused), root_missing=False)

    def _scan(
        self,
    ) -> (
        tuple[
            list[tuple[Path, Fingerprint]],
            list[tuple[Path, Fingerprint]],
            list[tuple[Path, Fingerprint, str]],
            tuple[Path, ...],
        ]
        | None
    ):
        """Which folders to load, which only changed their file stamps, which are gone."""
        if not self._root.is_dir():
            return None
        candidates: list[tuple[Path, Fingerprint]] = []
        same: list[tuple[Path, Fingerprint]] = []
        refused: list[tuple[Path, Fingerprint, str]] = []
        seen = set()
        for bundle_dir in bundle_dirs(self._root):
            seen.add(bundle_dir)
            stamp = bundle_fingerprint(bundle_dir)
            served = self._served.get(bundle_dir)
            if served is not None and served[0] == stamp:
                continue
            known_bad = self._refused.get(bundle_dir)
            if known_bad is not None and known_bad[0] == stamp:
                continue
            try:
                if served is not None and self._unchanged(bundle_dir, served[1]):
                    same.append((bundle_dir, stamp))
                    continue
            except Exception as exc:  # a manifest or checksum that no longer checks out
                refused.append((bundle_dir, stamp, str(exc) or type(exc).__name__))
                continue
            candidates.append((bundle_dir, stamp))
        gone = tuple(path for path in self._served if path not in seen)
        return candidates, same, refused, gone

    @staticmethod
    def _unchanged(bundle_dir: Path, served: ServedBundle) -> bool:
        manifest = contract.read_manifest(bundle_dir)
        contract.verify_checksums(bundle_dir, manifest)
        return manifest == served.manifest

    async def _load(self, bundle_dir: Path) -> PreparedModel:
        prepared = await self._backend.load(bundle_dir)
        provider = prepared.bundle.provider
        if self.require_gpu and provider != CUDA_PROVIDER:
            prepared.discard()
            raise contract.BundleError(
                f"{bundle_dir}: require_gpu is set but the model runs on "
                f"{provider}; check the CUDA and cuDNN libraries"
            )
        return prepared

    # --- applying (event loop) -----------------------------------------------------------
    def _apply(self, plan: _Plan) -> SyncReport:
        if plan.root_missing:
            log.error("model repository %s is missing; serving what is loaded", self._root)
            if not self._served:
                self._refused[self._root] = ((), "model repository folder does not exist")
            return SyncReport()
        self._refused.pop(self._root, None)
        added: list[tuple[str, int]] = []
        replaced: list[tuple[str, int]] = []
        removed: list[tuple[str, int]] = []
        for bundle_dir, stamp, prepared in plan.load:
            bundle = prepared.bundle
            old = self.table.find(*bundle.key)
            self._plane.add_model(prepared, self._observer.engine_observer(bundle))
            if old is not None:
                self._observer.model_unserved(old.bundle)
                self._retire(old)
            self._observer.model_served(bundle)
            self._served[bundle_dir] = (stamp, bundle)
            self._refused.pop(bundle_dir, None)
            (replaced if old is not None else added).append(bundle.key)
            self._observer.reload_result("replaced" if old is not None else "added")
            log.info(
                "%s %s v%d (%s) from %s on %s",
                "replaced" if old is not None else "serving",
                bundle.manifest.name,
                bundle.manifest.version,
                bundle.manifest.task,
                bundle_dir,
                bundle.provider,
            )
        for bundle_dir, stamp in plan.same:
            self._served[bundle_dir] = (stamp, self._served[bundle_dir][1])
            self._refused.pop(bundle_dir, None)
        for bundle_dir in plan.gone:
            _, bundle = self._served.pop(bundle_dir)
            self._refused.pop(bundle_dir, None)
            gone = self.table.remove(*bundle.key)
            if gone is not None:
                self._observer.model_unserved(gone.bundle)
                self._retire(gone)
            removed.append(bundle.key)
            self._observer.reload_result("removed")
            log.info("unloading %s v%d: %s was removed", *bundle.key, bundle_dir)
        for bundle_dir, stamp, why in plan.refused:
            self._refused[bundle_dir] = (stamp, why)
            self._observer.reload_result("refused")
            keeps = " (its previous version keeps serving)" if bundle_dir in self._served else ""
            log.error("refused bundle %s: %s%s", bundle_dir, why, keeps)
        for path in [p for p in self._refused if p != self._root and not p.is_dir()]:
            del self._refused[path]
        return SyncReport(
            added=tuple(added),
            replaced=tuple(replaced),
            removed=tuple(removed),
            refused={str(path): why for path, _, why in plan.refused},
        )

    def _retire(self, model: ServedModel) -> None:
        ModelTable.retire(model)
        task = asyncio.get_running_loop().create_task(self._finish_retiring(model))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _finish_retiring(self, model: ServedModel) -> None:
        started = time.monotonic()
        if not await model.engine.wait_idle(self._retire_grace):
            log.warning(
                "%s v%d still busy after %.1f s; refusing what is left",
                model.name,
                model.version,
                self._retire_grace,
            )
            await model.engine.stop(1.0)
        if self.table.find(model.name, model.version) is None:
            self._observer.engine_stopped(model.bundle)
        log.info(
            "retired %s v%d after %.2f s", model.name, model.version, time.monotonic() - started
        )
