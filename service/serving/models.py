"""The served models: one engine per loaded bundle version (a thread of this process or a
slot in an engine process), and lookup by task, name, version and language pair."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from service.bundle import Task
from service.engine.core import EngineObserver
from service.engine_process.backend import ModelEngine, PreparedModel, ServedBundle
from service.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    bundle: ServedBundle
    engine: ModelEngine

    @property
    def name(self) -> str:
        return self.bundle.manifest.name

    @property
    def version(self) -> int:
        return self.bundle.manifest.version

    @property
    def provider(self) -> str:
        return self.bundle.provider

    def is_idle(self) -> bool:
        """Its engine has let go of it: nothing queued or running is left behind."""
        return self.engine.is_idle()


class ModelTable:
    """Name -> versions of served models.

    A request that names no version gets the version pinned in `default_versions` when
    that one is loaded, else the newest. Only the event loop mutates the table.
    """

    def __init__(self, default_versions: Mapping[str, int] | None = None) -> None:
        self._models: dict[str, dict[int, ServedModel]] = {}
        self._pinned = dict(default_versions or {})

    def add(self, prepared: PreparedModel, observer: EngineObserver) -> ServedModel:
        """Serve a loaded bundle; one already served under the same name and version is
        displaced (the caller retires it with `retire`)."""
        served = ServedModel(bundle=prepared.bundle, engine=prepared.start(observer))
        self._models.setdefault(served.name, {})[served.version] = served
        return served

    def find(self, name: str, version: int) -> ServedModel | None:
        return self._models.get(name, {}).get(version)

    def remove(self, name: str, version: int) -> ServedModel | None:
        """Stop routing requests to a version; the caller retires what this returns."""
        versions = self._models.get(name, {})
        removed = versions.pop(version, None)
        if not versions:
            self._models.pop(name, None)
        return removed

    @staticmethod
    def retire(model: ServedModel) -> None:
        """Refuse new requests; its engine lets go once queued and running ones finish."""
        model.engine.retire()

    def all(self) -> list[ServedModel]:
        return [m for versions in self._models.values() for m in versions.values()]

    def default_version(self, name: str) -> int:
        return self._default_version(name, self._models[name])

    def _default_version(self, name: str, versions: Mapping[int, ServedModel]) -> int:
        pinned = self._pinned.get(name)
        return pinned if pinned is not None and pinned in versions else max(versions)

    def get(self, task: Task, name: str, version: int) -> ServedModel:
        """The model a request names; NOT_FOUND / INVALID_ARGUMENT name the field."""
        versions = self._models.get(name)
        if not versions:
            known = ", ".join(sorted(self._models)) or "none"
            raise NotFound(f"no model named '{name}' (loaded: {known})", field="options.model")
        chosen = versions.get(version or self._default_version(name, versions))
        if chosen is None:
            raise NotFound(
                f"model '{name}' has no version {version} (loaded: "
                f"{', '.join(str(v) for v in sorted(versions))})",
                field="options.model_version",
            )
        if chosen.bundle.manifest.task != task:
            raise InvalidArgument(
                f"model '{name}' is a {chosen.bundle.manifest.task} model, not {task}",
                field="options.model",
            )
        return chosen

    def default_for(self, task: Task, source: str = "", target: str = "") -> str:
        """The model name a request gets when it names none (by task and language pair)."""
        candidates = sorted(
            name
            for name, versions in self._models.items()
            if self._matches(versions[self._default_version(name, versions)], task, source, target)
        )
        if candidates:
            return candidates[0]
        if task == "translate":
            pairs = sorted(
                f"{m.bundle.manifest.languages.source}->{m.bundle.manifest.languages.target}"
                for m in self.all()
                if m.bundle.manifest.languages is not None
            )
            raise NotFound(
                f"no translate model for {source}->{target} "
                f"(available pairs: {', '.join(sorted(set(pairs))) or 'none'})",
                field="target_language",
            )
        raise NotFound(f"no {task} model is loaded", field="options.model")

    @staticmethod
    def _matches(model: ServedModel, task: Task, source: str, target: str) -> bool:
        manifest = model.bundle.manifest
        if manifest.task != task:
            return False
        if task != "translate" or manifest.languages is None:
            return True
        return manifest.languages.source == source and manifest.languages.target == target

    def close_all(self) -> None:
        """Refuse new requests on every model; queued and running ones still finish."""
        for model in self.all():
            self.retire(model)

    def all_idle(self) -> bool:
        return all(m.is_idle() for m in self.all())

    async def stop_all(self, timeout: float) -> None:
        """Stop every model's engine; whatever is still in flight is refused."""
        await asyncio.gather(*(model.engine.stop(timeout) for model in self.all()))
