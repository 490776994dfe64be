"""The latency histogram against numpy's exact percentiles: 3 significant digits."""

from __future__ import annotations

import numpy as np
import pytest

from seq2seq_client.loadtest.histogram import SUB_BUCKETS, LatencyHistogram

RELATIVE = 1 / (2 * SUB_BUCKETS)  # half a bucket's relative width
RESOLUTION = 0.5e-6  # values are rounded to whole microseconds


def _filled(values: np.ndarray) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for v in values:
        histogram.record(float(v))
    return histogram


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).lognormal(mean=np.log(0.012), sigma=0.8, size=20_000),
        10 ** np.random.default_rng(2).uniform(-6, 2, size=20_000),  # 1 us .. 100 s
        np.random.default_rng(3).uniform(0.0, 0.002, size=5_000),  # the exact linear range
    ],
    ids=["lognormal-12ms", "1us-to-100s", "below-2ms"],
)
def test_percentiles_within_three_significant_digits_of_numpy(values: np.ndarray) -> None:
    histogram = _filled(values)
    for q in (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0):
        exact = float(np.percentile(values, q, method="inverted_cdf"))
        got = histogram.percentile(q)
        assert got is not None
        assert abs(got - exact) <= exact * RELATIVE + RESOLUTION + 1e-12, (q, got, exact)


def test_count_sum_extremes_are_exact_and_empty_is_none() -> None:
    values = np.random.default_rng(4).exponential(0.01, size=1000)
    histogram = _filled(values)
    assert histogram.count == 1000
    assert histogram.max_seconds == values.max() and histogram.min_seconds == values.min()
    assert histogram.mean_seconds == pytest.approx(values.mean())
    assert sum(n for _, n in histogram.buckets()) == 1000
    empty = LatencyHistogram()
    assert empty.percentile(99) is None and empty.mean_seconds is None
    assert empty.summary_ms() == {
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "p99_9_ms": None,
        "max_ms": None,
        "mean_ms": None,
    }


def test_merge_equals_recording_everything_in_one() -> None:
    values = np.random.default_rng(5).lognormal(np.log(0.005), 1.0, size=3000)
    whole, first, second = _filled(values), _filled(values[:1000]), _filled(values[1000:])
    first.merge(second)
    assert list(first.buckets()) == list(whole.buckets())
    assert first.percentiles() == whole.percentiles()
    assert first.max_seconds == whole.max_seconds and first.count == whole.count


def test_summary_in_milliseconds_and_bad_percentile() -> None:
    histogram = _filled(np.array([0.001, 0.002, 0.003, 0.004]))
    figures = histogram.summary_ms()
    assert figures["p50_ms"] == 2.0 and figures["max_ms"] == 4.0 and figures["mean_ms"] == 2.5
    with pytest.raises(ValueError, match=r"0\.\.100"):
        histogram.percentile(101)
