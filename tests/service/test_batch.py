"""The running batch's generic state handling: pad, trim and reorder along each axis."""

from __future__ import annotations

import numpy as np

from service.engine.batch import BatchArrays, RunningBatch, StateAxes, concat_rows, take_rows
from tests.service.conftest import make_request

AXES = {
    "hidden": StateAxes(batch=0),  # (B, H)
    "cross": StateAxes(batch=1, source=2),  # (L, B, S, H): batch not first
    "cache": StateAxes(batch=0, target=2),  # (B, L, T, H)
}


def _arrays(rows: int, source: int, target: int, fill: float) -> BatchArrays:
    return BatchArrays(
        memory=np.full((rows, source, 2), fill),
        src_mask=np.ones((rows, source), bool),
        prev_ids=np.arange(rows, dtype=np.int64),
        states={
            "hidden": np.full((rows, 3), fill),
            "cross": np.full((2, rows, source, 3), fill),
            "cache": np.full((rows, 2, target, 3), fill),
        },
    )


def test_source_axes_pad_at_the_end_and_target_axes_at_the_start() -> None:
    long_cache = np.ones((1, 2, 4, 3))
    short_cache = np.full((1, 2, 1, 3), 2.0)
    joined = concat_rows([long_cache, short_cache], AXES["cache"])
    assert joined.shape == (2, 2, 4, 3)
    np.testing.assert_array_equal(joined[1, :, :3], 0.0)  # padding before the data
    np.testing.assert_array_equal(joined[1, :, 3], 2.0)  # newest slot last, aligned
    long_cross = np.ones((2, 1, 5, 3))
    short_cross = np.full((2, 1, 2, 3), 2.0)
    joined = concat_rows([short_cross, long_cross], AXES["cross"])
    assert joined.shape == (2, 2, 5, 3)
    np.testing.assert_array_equal(joined[:, 0, :2], 2.0)
    np.testing.assert_array_equal(joined[:, 0, 2:], 0.0)  # padding after the data


def test_take_rows_reorders_and_trims_both_axes() -> None:
    cache = np.arange(3 * 1 * 4 * 1).reshape(3, 1, 4, 1)
    taken = take_rows(cache, np.array([2, 2, 0]), AXES["cache"], source_length=9, target_length=2)
    assert taken.shape == (3, 1, 2, 1)
    np.testing.assert_array_equal(taken[:, 0, :, 0], cache[[2, 2, 0], 0, 2:, 0])
    cross = np.arange(2 * 3 * 5 * 1).reshape(2, 3, 5, 1)
    taken = take_rows(cross, np.array([1]), AXES["cross"], source_length=3, target_length=0)
    assert taken.shape == (2, 1, 3, 1)
    np.testing.assert_array_equal(taken, cross[:, [1], :3])


def test_batch_join_and_advance_keep_every_axis_consistent() -> None:
    batch = RunningBatch(AXES)
    old = make_request(length=5, name="old")
    old.decode_steps = 3
    batch.join([old], _arrays(rows=1, source=5, target=3, fill=1.0))
    new = make_request(length=2, name="new")
    batch.join([new], _arrays(rows=1, source=2, target=0, fill=2.0))
    arrays = batch.arrays
    assert arrays is not None and len(batch) == 2
    assert arrays.memory.shape == (2, 5, 2) and arrays.states["cross"].shape == (2, 2, 5, 3)
    assert arrays.states["cache"].shape == (2, 2, 3, 3)
    assert not arrays.src_mask[1, 2:].any()
    # One step later each cache grew by one slot; the old request finishes and leaves.
    new.decode_steps = 1
    grown = {
        **arrays.states,
        "cache": np.concatenate([arrays.states["cache"], np.full((2, 2, 1, 3), 7.0)], axis=2),
    }
    batch.advance(np.array([1, 1]), np.array([5, 6]), grown, [new], [2])  # a beam of two
    arrays = batch.arrays
    assert arrays is not None
    assert arrays.memory.shape == (2, 2, 2)  # trimmed to the shorter source
    assert arrays.states["cross"].shape == (2, 2, 2, 3)
    assert arrays.states["cache"].shape == (2, 2, 1, 3)  # only the slot the new row uses
    np.testing.assert_array_equal(arrays.states["cache"], 7.0)
    np.testing.assert_array_equal(arrays.states["hidden"], 2.0)
    assert arrays.prev_ids.tolist() == [5, 6]
