"""The served models: one scheduler and engine thread per loaded bundle, and lookup."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from service.bundle import Task
from service.engine.engine import EngineObserver, EngineThread, ModelEngine
from service.engine.repository import LoadedBundle
from service.engine.scheduler import Scheduler, SchedulerConfig
from service.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    bundle: LoadedBundle
    scheduler: Scheduler
    thread: EngineThread

    @property
    def name(self) -> str:
        return self.bundle.manifest.name

    @property
    def version(self) -> int:
        return self.bundle.manifest.version

    def is_idle(self) -> bool:
        return self.scheduler.queue_depth == 0 and self.thread.engine.num_running == 0


class ModelTable:
    """Name -> versions of served models; requests that name no version get the newest."""

    def __init__(self) -> None:
        self._models: dict[str, dict[int, ServedModel]] = {}

    def add(
        self, bundle: LoadedBundle, config: SchedulerConfig, observer: EngineObserver
    ) -> ServedModel:
        scheduler = Scheduler(config)
        engine = ModelEngine(bundle.runtime, scheduler, observer)
        thread = EngineThread(engine, f"{bundle.manifest.name}-v{bundle.manifest.version}")
        served = ServedModel(bundle=bundle, scheduler=scheduler, thread=thread)
        self._models.setdefault(served.name, {})[served.version] = served
        thread.start()
        return served

    def all(self) -> list[ServedModel]:
        return [m for versions in self._models.values() for m in versions.values()]

    def default_version(self, name: str) -> int:
        return max(self._models[name])

    def get(self, task: Task, name: str, version: int) -> ServedModel:
        """The model a request names; NOT_FOUND / INVALID_ARGUMENT name the field."""
        versions = self._models.get(name)
        if not versions:
            known = ", ".join(sorted(self._models)) or "none"
            raise NotFound(f"no model named '{name}' (loaded: {known})", field="options.model")
        chosen = versions.get(version or max(versions))
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
            if self._matches(versions[max(versions)], task, source, target)
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
            model.scheduler.close()

    def all_idle(self) -> bool:
        return all(m.is_idle() for m in self.all())

    def stop_all(self, timeout: float) -> None:
        """Stop every engine thread; whatever is still in flight is refused."""
        for model in self.all():
            model.thread.stop(timeout)
