"""The running decode batch as arrays: requests join at step boundaries and leave when done.

Each request owns a contiguous block of rows (one for greedy, up to its beam size for beam
search). Every array is indexed by row on its batch axis; memory and mask are padded on the
source axis to the longest request present.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.engine.requests import Request


def _pad_source_axis(array: np.ndarray, length: int, fill: float | bool) -> np.ndarray:
    """Pad axis 1 (source positions) of a (B, S, ...) array to `length`."""
    missing = length - array.shape[1]
    if missing <= 0:
        return array
    widths = [(0, 0)] * array.ndim
    widths[1] = (0, missing)
    return np.pad(array, widths, constant_values=fill)


@dataclass
class BatchArrays:
    memory: np.ndarray  # (B, S, H) encoder memory
    src_mask: np.ndarray  # (B, S) bool, True on real source tokens
    prev_ids: np.ndarray  # (B,) int64, last token fed to the decoder
    states: dict[str, Any]  # name -> state with the batch on `state_axes[name]`; a host
    # array, or a device-resident runtime value while the rows stay the same (IO binding)


class RunningBatch:
    """The requests being decoded, their row blocks, and the arrays the decoder reads."""

    def __init__(
        self,
        state_axes: dict[str, int],
        to_host: Callable[[Any], np.ndarray] = np.asarray,
    ) -> None:
        self._state_axes = state_axes
        self._to_host = to_host  # brings a device-resident state back when rows change
        self.requests: list[Request] = []  # in row order
        self.row_counts: list[int] = []  # rows of each request, same order
        self.arrays: BatchArrays | None = None

    def __len__(self) -> int:
        """Rows in the batch."""
        return 0 if self.arrays is None else int(self.arrays.prev_ids.shape[0])

    @property
    def reserved_rows(self) -> int:
        """Rows the running requests may grow to (a beam expands after its first step)."""
        return sum(r.params.rows for r in self.requests)

    def join(self, requests: list[Request], arrays: BatchArrays) -> None:
        """Append freshly encoded requests, one row each."""
        if len(requests) != arrays.prev_ids.shape[0]:
            raise ValueError(
                f"{len(requests)} requests joined with {arrays.prev_ids.shape[0]} encoded rows"
            )
        self.requests.extend(requests)
        self.row_counts.extend([1] * len(requests))
        if self.arrays is None:
            self.arrays = arrays
            return
        current = self.arrays
        length = max(current.memory.shape[1], arrays.memory.shape[1])
        self.arrays = BatchArrays(
            memory=np.concatenate(
                [
                    _pad_source_axis(current.memory, length, 0.0),
                    _pad_source_axis(arrays.memory, length, 0.0),
                ]
            ),
            src_mask=np.concatenate(
                [
                    _pad_source_axis(current.src_mask, length, False),
                    _pad_source_axis(arrays.src_mask, length, False),
                ]
            ),
            prev_ids=np.concatenate([current.prev_ids, arrays.prev_ids]),
            states={
                name: np.concatenate(
                    [self._to_host(current.states[name]), self._to_host(arrays.states[name])],
                    axis=axis,
                )
                for name, axis in self._state_axes.items()
            },
        )

    def clear(self) -> None:
        self.requests = []
        self.row_counts = []
        self.arrays = None

    def advance(
        self,
        rows: np.ndarray,
        next_ids: np.ndarray,
        states: dict[str, Any],
        requests: list[Request],
        row_counts: list[int],
    ) -> None:
        """Move to the next step: new row i continues old row `rows[i]` and feeds `next_ids[i]`.

        `states` are the step's updated states (old row order); rows may repeat (a beam
        expanding) or be dropped (finished requests). Arrays are gathered only when the
        rows actually change, so a greedy-only batch with no finished request copies nothing.
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
        self.requests = requests
        self.row_counts = row_counts
        if unchanged:
            self.arrays = BatchArrays(arrays.memory, arrays.src_mask, next_ids, states)
            return
        longest = max(r.source_length for r in requests)
        self.arrays = BatchArrays(
            memory=arrays.memory[rows, :longest],
            src_mask=arrays.src_mask[rows, :longest],
            prev_ids=next_ids,
            states={
                name: np.take(self._to_host(states[name]), rows, axis=axis)
                for name, axis in self._state_axes.items()
            },
        )
