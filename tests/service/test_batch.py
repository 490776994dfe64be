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


def test_request_constant_arrays_move_only_when_requests_or_row_counts_change() -> None:
    axes = {**AXES, "fixed": StateAxes(batch=0, source=1, constant=True)}  # (B, S, H)
    batch = RunningBatch(axes)
    first, second = make_request(length=3, name="first"), make_request(length=2, name="second")
    arrays = _arrays(rows=2, source=3, target=0, fill=1.0)
    arrays.memory[1] = 2.0
    per_request = np.stack([np.full((3, 2), 1.0), np.full((3, 2), 2.0)])  # row 0: first
    arrays.states["fixed"] = per_request
    batch.join([first, second], arrays)
    step = {**arrays.states, "hidden": np.arange(2 * 3, dtype=float).reshape(2, 3)}
    batch.advance(np.array([0, 0, 1]), np.array([4, 5, 6]), step, [first, second], [2, 1])
    expanded = batch.arrays
    assert expanded is not None  # the first request became a beam of two: rows gathered
    assert expanded.states["fixed"][:, 0, 0].tolist() == [1.0, 1.0, 2.0]
    assert expanded.memory[:, 0, 0].tolist() == [1.0, 1.0, 2.0]
    # The beam swaps its two rows: the per-row state follows, request-constant ones stay.
    step = {**expanded.states, "hidden": np.arange(3 * 3, dtype=float).reshape(3, 3)}
    batch.advance(np.array([1, 0, 2]), np.array([7, 8, 9]), step, [first, second], [2, 1])
    swapped = batch.arrays
    assert swapped is not None
    assert swapped.states["hidden"][:, 0].tolist() == [3.0, 0.0, 6.0]
    assert swapped.states["fixed"] is expanded.states["fixed"]
    assert swapped.memory is expanded.memory and swapped.src_mask is expanded.src_mask
    # The first request leaves: the second's row is gathered and trimmed to its source.
    batch.advance(np.array([2]), np.array([1]), swapped.states, [second], [1])
    left = batch.arrays
    assert left is not None
    assert left.states["fixed"].shape == (1, 2, 2) and left.memory.shape == (1, 2, 2)
    np.testing.assert_array_equal(left.states["fixed"], 2.0)
    np.testing.assert_array_equal(left.memory, 2.0)
