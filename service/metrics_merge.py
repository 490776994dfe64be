"""One /metrics for several front-end processes.

Each follower front end sends the supervisor a snapshot of its counters and histograms
(gRPC RED metrics, rejections, its process's CPU) every second; the supervisor's /metrics
adds them to its own samples with the same name and labels. Gauges are the supervisor's
alone (the engine's gauges reach it over the engine IPC). What a follower counted before
it exited stays in the totals, so counters never go backwards when one is restarted.
"""

from __future__ import annotations

from collections.abc import Iterator

from msgspec import Struct
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

MERGED_KINDS = frozenset({"counter", "histogram", "summary"})

_Key = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, sorted labels)


# --- what a follower sends (one message of the front-end control channel) --------------
class Sample(Struct, array_like=True):
    name: str
    labels: dict[str, str]
    value: float


class Family(Struct, array_like=True):
    name: str
    kind: str  # "counter" | "histogram" | "summary"
    documentation: str
    samples: tuple[Sample, ...]


class MetricsSnapshot(Struct, tag="snapshot", array_like=True):
    index: int
    families: tuple[Family, ...]


def snapshot(registry: CollectorRegistry) -> tuple[Family, ...]:
    """A follower's counters and histograms (creation timestamps left out)."""
    return tuple(
        Family(
            metric.name,
            metric.type,
            metric.documentation,
            tuple(
                Sample(s.name, dict(s.labels), float(s.value))
                for s in metric.samples
                if not s.name.endswith("_created")
            ),
        )
        for metric in registry.collect()
        if metric.type in MERGED_KINDS
    )


class RemoteFrontends:
    """The latest snapshot of every follower, and the totals of followers that exited."""

    def __init__(self) -> None:
        self._latest: dict[int, tuple[Family, ...]] = {}
        self._retired: dict[str, tuple[Family, dict[_Key, float]]] = {}

    def update(self, index: int, families: tuple[Family, ...]) -> None:
        self._latest[index] = families

    def retire(self, index: int) -> None:
        """A follower exited: keep what it counted (a restarted one starts from zero)."""
        for family in self._latest.pop(index, ()):
            _, values = self._retired.setdefault(family.name, (family, {}))
            _add(values, family.samples)

    def totals(self) -> dict[str, tuple[Family, dict[_Key, float]]]:
        """Family name -> (a description, sample -> value summed over every follower)."""
        merged = {name: (family, dict(values)) for name, (family, values) in self._retired.items()}
        for families in self._latest.values():
            for family in families:
                _, values = merged.setdefault(family.name, (family, {}))
                _add(values, family.samples)
        return merged


def _add(values: dict[_Key, float], samples: tuple[Sample, ...]) -> None:
    for sample in samples:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        values[key] = values.get(key, 0.0) + sample.value


class MergedCollector:
    """The supervisor's own registry plus every follower's counters and histograms."""

    def __init__(self, registry: CollectorRegistry, remote: RemoteFrontends) -> None:
        self._registry = registry
        self._remote = remote

    def collect(self) -> Iterator[Metric]:
        remote = self._remote.totals()
        for metric in self._registry.collect():
            extra = remote.pop(metric.name, None)
            if extra is None or metric.type not in MERGED_KINDS:
                yield metric
                continue
            values = extra[1]
            merged = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            for s in metric.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                added = 0.0 if s.name.endswith("_created") else values.pop(key, 0.0)
                merged.add_sample(s.name, s.labels, s.value + added, s.timestamp, s.exemplar)
            for (name, labels), value in values.items():
                merged.add_sample(name, dict(labels), value)
            yield merged
        for family, values in remote.values():  # families only followers have
            only = Metric(family.name, family.documentation, family.kind)
            for (name, labels), value in values.items():
                only.add_sample(name, dict(labels), value)
            yield only


def merged_registry(registry: CollectorRegistry, remote: RemoteFrontends) -> CollectorRegistry:
    """A registry for the /metrics port: `registry` with the followers' figures added."""
    served = CollectorRegistry(auto_describe=False)
    served.register(MergedCollector(registry, remote))  # type: ignore[arg-type]
    return served
