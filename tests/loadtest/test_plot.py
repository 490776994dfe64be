"""The percentile curve of the PNG report runs through the slowest call."""

from __future__ import annotations

import pytest

from seq2seq_client.loadtest.plot import percentile_curve


def test_the_curve_ends_at_the_slowest_bucket() -> None:
    histogram = [[10.0, 50], [20.0, 0], [30.0, 40], [90.0, 9], [400.0, 1]]  # 100 calls
    xs, ys = percentile_curve(histogram)
    assert ys == [10.0, 30.0, 90.0, 400.0]  # empty buckets are skipped, the max is kept
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert xs[-1] == pytest.approx(200.0)  # the 100th of 100 calls: (100 - 1/2) / 100
    assert xs[-2] == pytest.approx(100 / 1.5)  # 99 calls at or below 90 ms


def test_one_call_is_one_point() -> None:
    assert percentile_curve([[5.0, 1]]) == ([2.0], [5.0])
