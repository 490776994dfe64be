"""The served models: one engine per loaded bundle version (a thread of this process or a
slot in an engine process), lookup by task, name, version and language pair, and how each
is described to callers (one listing for every protocol)."""

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
class ModelChoice:
    """Which model a request names; empty / 0 = the task's default and newest version."""

    name: str = ""
    version: int = 0


@dataclass(frozen=True)
class ModelListing:
    """One served model as every protocol lists it (ListModels, /v1/models, `seq2seq models`)."""

    name: str
    version: int
    task: str
    source_language: str  # "" for a model that does not translate
    target_language: str
    description: str  # what the model is for and what it is not ("" when the bundle says none)
    architecture: str  # e.g. "rnn-gru", "transformer"
    attention: str  # e.g. "soft global general", "soft local(D=8) dot", "none global dot"
    has_attention: bool
    precision: str
    provider: str  # the execution provider its sessions got
    max_source_tokens: int
    max_target_tokens: int
    evaluation: dict[str, float]  # test-split figures of the manifest
    is_default_version: bool  # answers requests that name no version


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

    def listing(self, is_default: bool) -> ModelListing:
        manifest = self.bundle.manifest
        attention = manifest.attention
        scope = attention.scope if attention.window is None else f"local(D={attention.window})"
        languages = manifest.languages
        return ModelListing(
            name=manifest.name,
            version=manifest.version,
            task=manifest.task,
            source_language=languages.source if languages else "",
            target_language=languages.target if languages else "",
            description=manifest.description,
            architecture=f"{manifest.architecture}-{manifest.cell}"
            if manifest.cell
            else manifest.architecture,
            attention=f"{attention.kind} {scope} {attention.score}",
            has_attention=attention.kind != "none",
            precision=manifest.precision,
            provider=self.provider,
            max_source_tokens=manifest.max_source_length,
            max_target_tokens=manifest.max_target_length,
            evaluation=dict(manifest.evaluation.metrics) if manifest.evaluation else {},
            is_default_version=is_default,
        )


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

    def listings(self, task: str = "") -> list[ModelListing]:
        """Every served model (of `task`, when given), by name and version."""
        return [
            m.listing(m.version == self.default_version(m.name))
            for m in sorted(self.all(), key=lambda m: (m.name, m.version))
            if not task or m.bundle.manifest.task == task
        ]

    def language_pairs(self) -> dict[str, list[str]]:
        """source language -> target languages, over the served translate models."""
        pairs: dict[str, set[str]] = {}
        for model in self.all():
            languages = model.bundle.manifest.languages
            if model.bundle.manifest.task == "translate" and languages is not None:
                pairs.setdefault(languages.source, set()).add(languages.target)
        return {source: sorted(targets) for source, targets in sorted(pairs.items())}

    def languages(self) -> list[str]:
        """Every language a served translate model reads or writes."""
        pairs = self.language_pairs()
        return sorted(set(pairs) | {t for targets in pairs.values() for t in targets})

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
