"""The running decode batch as arrays: requests join at step boundaries and leave when done.

Each request owns a contiguous block of rows (one for greedy and sampling, up to its beam
size for beam search). Every array has the rows on its batch axis. Beyond that, arrays are
handled generically by their axes (`StateAxes`, from the bundle manifest):
- a source axis (memory, the source mask, cached cross-attention) is padded at the END to
  the longest source present and trimmed when the longest source leaves;
- a target axis (a self-attention cache, one slot per step, newest last) is padded at the
  START to the longest cache present and its leading slots are trimmed once no live row
  uses them.
Request-constant arrays (memory, the source mask and `constant` states such as cached
cross-attention) hold identical rows within a request, so they are gathered only when the
batch's membership changes (a request joins, leaves or changes its row count), never when a
beam merely reorders its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.engine.requests import Request


@dataclass(frozen=True)
class StateAxes:
    batch: int  # rows
    source: int | None = None  # follows the source length, padded at the end
    target: int | None = None  # grows one slot per step, padded at the start
    constant: bool = False  # the same in every row of a request; never updated by a step


MEMORY_AXES = StateAxes(batch=0, source=1, constant=True)  # (B, S, H)
MASK_AXES = StateAxes(batch=0, source=1, constant=True)  # (B, S)


def pad_axis(array: np.ndarray, axis: int, length: int, *, at_start: bool) -> np.ndarray:
    """Zero-pad (False for bool) `axis` of `array` to `length`, before or after the data."""
    missing = length - array.shape[axis]
    if missing <= 0:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (missing, 0) if at_start else (0, missing)
    return np.pad(array, widths)


def concat_rows(parts: list[np.ndarray], axes: StateAxes) -> np.ndarray:
    """Concatenate on the batch axis after padding the source / target axis to one length."""
    for axis, at_start in ((axes.source, False), (axes.target, True)):
        if axis is not None:
            length = max(p.shape[axis] for p in parts)
            parts = [pad_axis(p, axis, length, at_start=at_start) for p in parts]
    return np.concatenate(parts, axis=axes.batch)


def take_rows(
    array: np.ndarray,
    rows: np.ndarray | None,
    axes: StateAxes,
    source_length: int,
    target_length: int,
) -> np.ndarray:
    """Gather `rows` on the batch axis (None: keep every row); keep the first
    `source_length` source positions and the last `target_length` target slots. The result
    is contiguous, so onnxruntime reads it without a copy of its own at every step."""
    index: list[slice] = [slice(None)] * array.ndim
    if axes.source is not None:
        index[axes.source] = slice(0, source_length)
    if axes.target is not None:
        index[axes.target] = slice(array.shape[axes.target] - target_length, None)
    trimmed = array[tuple(index)]  # a view: trim first, so the gather copies less
    if rows is None:
        return trimmed if trimmed is array else np.ascontiguousarray(trimmed)
    return np.take(trimmed, rows, axis=axes.batch)


@dataclass
class BatchArrays:
    memory: np.ndarray  # (B, S, H) encoder memory
    src_mask: np.ndarray  # (B, S) bool, True on real source tokens
    prev_ids: np.ndarray  # (B,) int64, last token fed to the decoder
    states: dict[str, Any]  # name -> state laid out by its StateAxes; a host array, or a
    # device-resident runtime value while the rows stay the same (IO binding)


class RunningBatch:
    """The requests being decoded, their row blocks, and the arrays the decoder reads."""

    def __init__(
        self,
        state_axes: Mapping[str, StateAxes],
        to_host: Callable[[Any], np.ndarray] = np.asarray,
    ) -> None:
        self._state_axes = dict(state_axes)
        self._to_host = to_host  # brings a device-resident state back when rows change
        self.requests: list[Request] = []  # in row order
        self.row_counts: list[int] = []  # rows of each request, same order
        self.arrays: BatchArrays | None = None
        # Bumped whenever the requests or their row counts change, so what is computed per
        # composition (e.g. a shortlist's vocabulary) is recomputed only then.
        self.composition = 0

    def __len__(self) -> int:
        """Rows in the batch."""
        return 0 if self.arrays is None else int(self.arrays.prev_ids.shape[0])

    def join(self, requests: list[Request], arrays: BatchArrays) -> None:
        """Append freshly encoded requests, one row each."""
        if len(requests) != arrays.prev_ids.shape[0]:
            raise ValueError(
                f"{len(requests)} requests joined with {arrays.prev_ids.shape[0]} encoded rows"
            )
        self.requests.extend(requests)
        self.row_counts.extend([1] * len(requests))
        self.composition += 1
        if self.arrays is None:
            self.arrays = arrays
            return
        current = self.arrays
        self.arrays = BatchArrays(
            memory=concat_rows([current.memory, arrays.memory], MEMORY_AXES),
            src_mask=concat_rows([current.src_mask, arrays.src_mask], MASK_AXES),
            prev_ids=np.concatenate([current.prev_ids, arrays.prev_ids]),
            states={
                name: concat_rows(
                    [self._to_host(current.states[name]), self._to_host(arrays.states[name])],
                    axes,
                )
                for name, axes in self._state_axes.items()
            },
        )

    def clear(self) -> None:
        self.requests = []
        self.row_counts = []
        self.arrays = None
        self.composition += 1

    def advance(
        self,
        rows: np.ndarray,
        next_ids: np.ndarray,
        states: dict[str, Any],
        requests: list[Request],
        row_counts: list[int],
    ) -> None:
        """Move to the next step: new row i continues old row `rows[i]` and feeds `next_ids[i]`.

        `states` are the step's states (old row order); rows may repeat (a beam expanding) or
        be dropped (finished requests). Arrays are gathered only when the rows actually
        change, so a greedy-only batch with no finished request copies nothing, and
        request-constant ones only when the requests or their row counts change.
        """
        if self.arrays is None:
            raise RuntimeError("advance() on an empty batch")
        if rows.size == 0:
            self.clear()
            return
        arrays = self.arrays
        unchanged = rows.size == arrays.prev_ids.shape[0] and bool(
            np.array_equal(rows, np.arange(rows.size))
        )
        if unchanged:
            self.requests = requests
            self.row_counts = row_counts
            self.arrays = BatchArrays(arrays.memory, arrays.src_mask, next_ids, states)
            return
        constant_rows = self._constant_rows(requests, row_counts)
        self.requests = requests
        self.row_counts = row_counts
        self.composition += 1
        source_length = max(r.source_length for r in requests)
        target_length = max(r.decode_steps for r in requests)

        def take(array: Any, axes: StateAxes) -> Any:
            if not axes.constant:
                return take_rows(self._to_host(array), rows, axes, source_length, target_length)
            if constant_rows is None:  # the same requests with the same rows
                return array  # as it is (a device-resident value stays there)
            return take_rows(self._to_host(array), constant_rows, axes, source_length, 0)

        self.arrays = BatchArrays(
            memory=take(arrays.memory, MEMORY_AXES),
            src_mask=take(arrays.src_mask, MASK_AXES),
            prev_ids=next_ids,
            states={name: take(states[name], axes) for name, axes in self._state_axes.items()},
        )

    def _constant_rows(self, requests: list[Request], row_counts: list[int]) -> np.ndarray | None:
        """For each new row, a current row of the same request: what request-constant arrays
        are gathered by; None when that is every current row in order (the same requests
        with the same row counts: a beam only reordered its rows)."""
        blocks: dict[Request, tuple[int, int]] = {}  # request -> (first row, rows) now
        start = 0
        for request, count in zip(self.requests, self.row_counts, strict=True):
            blocks[request] = (start, count)
            start += count
        parts = []
        for request, count in zip(requests, row_counts, strict=True):
            first, current = blocks[request]
            parts.append(first + np.minimum(np.arange(count), current - 1))
        rows = np.concatenate(parts)
        same = rows.size == start and np.array_equal(rows, np.arange(rows.size))
        return None if same else rows
