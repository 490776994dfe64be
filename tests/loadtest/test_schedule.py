"""Arrival schedules and the warm-up / measured / done bounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seq2seq_client.loadtest.schedule import (
    Bounds,
    Phase,
    Phases,
    arrival_offsets,
    constant_offsets,
    poisson_offsets,
)


def _take(offsets, n: int) -> np.ndarray:
    return np.array(list(itertools.islice(offsets, n)))


def test_constant_arrivals_have_exactly_the_interval() -> None:
    offsets = _take(constant_offsets(250.0), 10_001)
    assert offsets[0] == 0.0
    assert np.allclose(np.diff(offsets), 1 / 250.0)
    assert offsets[-1] == pytest.approx(40.0)  # no drift after 10,000 gaps


def test_poisson_arrivals_have_the_mean_gap_and_exponential_spread() -> None:
    gaps = np.diff(_take(poisson_offsets(200.0, seed=7), 40_001))
    assert gaps.mean() == pytest.approx(1 / 200.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)  # exponential: CV = 1
    assert (gaps > 0).all()


def test_poisson_schedule_is_fixed_by_its_seed() -> None:
    assert list(_take(poisson_offsets(50.0, 1), 100)) == list(_take(poisson_offsets(50.0, 1), 100))
    assert list(_take(poisson_offsets(50.0, 1), 100)) != list(_take(poisson_offsets(50.0, 2), 100))


@pytest.mark.parametrize("mode", ["closed", "bogus"])
def test_only_open_modes_have_arrivals(mode: str) -> None:
    with pytest.raises(ValueError, match="not an open-loop mode"):
        arrival_offsets(mode, 10.0, 0)


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        next(poisson_offsets(rate, 0))


def _phases(bounds: Bounds, offsets: list[float]) -> list[Phase]:
    phases = Phases(bounds)
    return [phases.classify(offset) for offset in offsets]


W, M, D = Phase.WARMUP, Phase.MEASURED, Phase.DONE


def test_time_warmup_then_the_measured_window_by_duration() -> None:
    bounds = Bounds(duration=1.0, max_requests=100, warmup_seconds=0.5)
    assert _phases(bounds, [0.0, 0.4, 0.6, 1.5, 1.6, 1.7]) == [W, W, M, M, D, D]


def test_count_warmup_then_the_window_by_count() -> None:
    bounds = Bounds(duration=10.0, max_requests=2, warmup_requests=2, warmup_seconds=5.0)
    assert _phases(bounds, [0.0, 0.1, 0.2, 0.3, 0.4]) == [W, W, M, M, D]


def test_count_warmup_is_bounded_by_time_too() -> None:
    bounds = Bounds(duration=1.0, max_requests=10, warmup_requests=100)
    assert _phases(bounds, [0.0, 0.5, 1.0, 1.1]) == [W, W, D, D]


def test_window_starts_at_the_first_measured_request() -> None:
    phases = Phases(Bounds(duration=1.0, max_requests=10))
    assert phases.classify(0.3) is M
    assert phases.window_start == 0.3
    assert phases.classify(1.29) is M and phases.classify(1.3) is D
    assert phases.measured == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"duration": 0.0, "max_requests": 1}, "duration"),
        ({"duration": 1.0, "max_requests": 0}, "max_requests"),
        ({"duration": 1.0, "max_requests": 1, "warmup_seconds": -1.0}, "warm-up"),
    ],
)
def test_bounds_are_checked(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bounds(**fields)
