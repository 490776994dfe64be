"""The running decode batch as arrays: rows join at step boundaries and leave when done.

Every array is indexed by row on its batch axis; memory and mask are padded on the source
axis to the longest row present.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    states: dict[str, np.ndarray]  # name -> array with the batch on `state_axes[name]`


class RunningBatch:
    """The requests being decoded and their arrays, row i <-> requests[i]."""

    def __init__(self, state_axes: dict[str, int]) -> None:
        self._state_axes = state_axes
        self.requests: list[Request] = []
        self.arrays: BatchArrays | None = None

    def __len__(self) -> int:
        return len(self.requests)

    def join(self, requests: list[Request], arrays: BatchArrays) -> None:
        """Append freshly encoded rows (one per request) to the batch."""
        if len(requests) != arrays.prev_ids.shape[0]:
            raise ValueError(
                f"{len(requests)} requests joined with {arrays.prev_ids.shape[0]} encoded rows"
            )
        if self.arrays is None:
            self.requests = list(requests)
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
                name: np.concatenate([current.states[name], arrays.states[name]], axis=axis)
                for name, axis in self._state_axes.items()
            },
        )
        self.requests.extend(requests)

    def keep(self, rows: np.ndarray) -> None:
        """Keep only `rows` (indices, in order); trims source padding no row needs."""
        if self.arrays is None:
            return
        if rows.size == 0:
            self.requests = []
            self.arrays = None
            return
        arrays = self.arrays
        self.requests = [self.requests[i] for i in rows]
        longest = max(r.source_length for r in self.requests)
        self.arrays = BatchArrays(
            memory=arrays.memory[rows, :longest],
            src_mask=arrays.src_mask[rows, :longest],
            prev_ids=arrays.prev_ids[rows],
            states={
                name: np.take(arrays.states[name], rows, axis=axis)
                for name, axis in self._state_axes.items()
            },
        )

    def advance(self, next_ids: np.ndarray, states: dict[str, np.ndarray]) -> None:
        """Feed this step's chosen tokens and updated states to the next step."""
        if self.arrays is None:
            raise RuntimeError("advance() on an empty batch")
        self.arrays.prev_ids = next_ids
        self.arrays.states = states
