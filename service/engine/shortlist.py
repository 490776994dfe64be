"""Marian's lexical shortlist: which target ids a source sentence may translate into.

The binary file (`lex.*.s2t.bin`, Marian's src/data/shortlist.{h,cpp},
BinaryShortlistGenerator), little-endian:
  u64 magic 0xF11A48D5013417F5, u64 checksum (hash of everything after it),
  u64 firstNum, u64 bestNum, u64 wordToOffsetSize, u64 shortListsSize,
  u64 wordToOffset[wordToOffsetSize]   candidates of source id i are
  u32 shortLists[shortListsSize]       shortLists[wordToOffset[i] : wordToOffset[i + 1]]

A request's selection (`Shortlist.select`) is what Marian's `generate` computes for a batch
of one sentence: ids below firstNum (the most frequent target words), the candidates of
every source id, the source ids themselves when both sides share one vocabulary, then the
next unselected ids from firstNum on until the count is a multiple of 8. The engine adds
EOS (always below firstNum in Marian's vocabularies) so that every selection can end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.bundle import BundleError

MAGIC = 0xF11A48D5013417F5
_HEADER = 6  # u64 fields
_MASK64 = (1 << 64) - 1


def marian_checksum(words: np.ndarray) -> int:
    """util::hashMem<uint64_t, uint64_t>: boost's hash_combine over u64 words (std::hash of
    an integer is the integer itself)."""
    seed = 0
    for value in words.tolist():
        seed ^= (value + 0x9E3779B9 + ((seed << 6) & _MASK64) + (seed >> 2)) & _MASK64
    return seed


@dataclass(frozen=True)
class Shortlist:
    first_num: int  # target ids below this are always selected
    best_num: int  # candidates kept per source word when the file was made
    offsets: np.ndarray  # (source vocabulary + 1,) uint64
    candidates: np.ndarray  # (N,) uint32 target ids
    target_vocab: int
    shared: bool  # source ids are selected too

    def select(
        self, source_ids: Sequence[int] | np.ndarray, *, always: int | None = None
    ) -> np.ndarray:
        """The sorted target ids (int64) one sentence may produce; `always` (e.g. EOS) is
        added besides Marian's selection."""
        selected = np.zeros(self.target_vocab, bool)
        selected[: self.first_num] = True
        sources = np.unique(np.asarray(source_ids, np.int64))
        sources = sources[(sources >= 0) & (sources < self.offsets.shape[0] - 1)]
        for source in sources.tolist():
            selected[self.candidates[self.offsets[source] : self.offsets[source + 1]]] = True
        if self.shared:
            selected[sources[sources < self.target_vocab]] = True
        missing = -int(selected.sum()) % 8
        if missing:
            free = np.flatnonzero(~selected[self.first_num :])[:missing] + self.first_num
            selected[free] = True
        if always is not None:
            selected[always] = True
        return np.flatnonzero(selected).astype(np.int64)


def read_shortlist(
    path: Path, *, source_vocab: int, target_vocab: int, shared: bool, verify_checksum: bool
) -> Shortlist:
    """Read and bounds-check a binary shortlist; BundleError names the file and the fault.
    The checksum (a Python loop over the file, ~0.3 s for 4 MB) is verified on request."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the shortlist: {exc}") from exc
    if len(raw) < 8 * _HEADER:
        raise BundleError(f"{path}: {len(raw)} bytes, too short for a shortlist header")
    header = np.frombuffer(raw, "<u8", count=_HEADER)
    magic, checksum, first_num, best_num, offsets_size, lists_size = (int(v) for v in header)
    if magic != MAGIC:
        raise BundleError(f"{path}: not a binary Marian shortlist (magic 0x{magic:x})")
    expected = 8 * _HEADER + 8 * offsets_size + 4 * lists_size
    if expected != len(raw):
        raise BundleError(f"{path}: the header claims {expected} bytes, the file has {len(raw)}")
    offsets = np.frombuffer(raw, "<u8", count=offsets_size, offset=8 * _HEADER)
    candidates = np.frombuffer(raw, "<u4", count=lists_size, offset=8 * (_HEADER + offsets_size))
    if verify_checksum:
        body = np.frombuffer(raw[16 : 16 + (len(raw) - 16) // 8 * 8], "<u8")
        if marian_checksum(body) != checksum:
            raise BundleError(f"{path}: checksum mismatch: the shortlist is corrupted")
    if offsets_size != source_vocab + 1:
        raise BundleError(
            f"{path}: covers {offsets_size - 1} source ids, the vocabulary has {source_vocab}"
        )
    if (
        offsets_size == 0
        or int(offsets[-1]) != lists_size
        or bool(np.any(np.diff(offsets.astype(np.int64)) < 0))
        or (lists_size and int(candidates.max()) >= target_vocab)
    ):
        raise BundleError(f"{path}: offsets or target ids out of bounds")
    return Shortlist(
        first_num=first_num,
        best_num=best_num,
        offsets=offsets.astype(np.int64),
        candidates=candidates.astype(np.int64),
        target_vocab=target_vocab,
        shared=shared,
    )


# The shortlist step pays a gather of its columns' weights (they change whenever the batch
# does); above this share of the vocabulary the full step (its weights prepacked once) plus
# a per-row restriction here is cheaper. Measured on the en<->pt students: a 32-row int8
# step over 10,700 columns cost 1.7x the full step, over 1,500 columns 0.7x.
GRAPH_MAX_FRACTION = 0.125


@dataclass(frozen=True)
class BatchVocabulary:
    """The output vocabulary of one decoder step of a batch whose requests use a shortlist.

    With `ids`, the step computes log-probs over these columns only (the union of the
    requests' selections) and restricts each row to its own request's selection by `mask`.
    Without (`ids` None: the union is large, or some request decodes over the whole
    vocabulary), the step runs over the whole vocabulary and the engine restricts each
    restricted request's rows to its `selections` entry (`best_within`, `renormalised`).
    Either way a request's output never depends on what else shares the batch.
    """

    ids: np.ndarray | None  # (K,) sorted token ids, the step's columns; None = all V
    mask: np.ndarray | None  # (B, K) bool with `ids`: the columns each row may choose
    selections: tuple[np.ndarray | None, ...]  # per request: its sorted ids, None = all
    # Without `ids`: each row's selection as one padded index (B, L) (a row with no
    # selection holds zeros), which entries are real (B, L), and which rows are restricted
    row_ids: np.ndarray | None = None
    row_valid: np.ndarray | None = None
    restricted_rows: np.ndarray | None = None  # (B,) bool


def batch_vocabulary(
    selections: Sequence[np.ndarray | None],
    row_counts: Sequence[int],
    vocab_size: int,
    max_fraction: float = GRAPH_MAX_FRACTION,
) -> BatchVocabulary | None:
    """One step's vocabulary for requests with these selections (None: the whole vocabulary)
    occupying `row_counts` rows each; None when no request is restricted."""
    if all(s is None for s in selections):
        return None
    union = np.zeros(vocab_size, bool)
    for selection in selections:
        if selection is not None:
            union[selection] = True
    ids = np.flatnonzero(union).astype(np.int64)
    if any(s is None for s in selections) or ids.size > max_fraction * vocab_size:
        return _row_selections(selections, row_counts)
    column = np.zeros(vocab_size, np.int64)
    column[ids] = np.arange(ids.size)
    per_request = np.zeros((len(selections), ids.size), bool)
    for index, selection in enumerate(selections):
        per_request[index, column[selection]] = True
    return BatchVocabulary(ids, np.repeat(per_request, row_counts, axis=0), tuple(selections))


def _row_selections(
    selections: Sequence[np.ndarray | None], row_counts: Sequence[int]
) -> BatchVocabulary:
    """A full step's vocabulary: every row's own selection, padded to one width."""
    width = max(s.size for s in selections if s is not None)
    per_request = np.zeros((len(selections), width), np.int64)
    valid = np.zeros((len(selections), width), bool)
    for index, selection in enumerate(selections):
        if selection is not None:
            per_request[index, : selection.size] = selection
            valid[index, : selection.size] = True
    restricted = np.array([s is not None for s in selections])
    return BatchVocabulary(
        None,
        None,
        tuple(selections),
        row_ids=np.repeat(per_request, row_counts, axis=0),
        row_valid=np.repeat(valid, row_counts, axis=0),
        restricted_rows=np.repeat(restricted, row_counts),
    )


def narrowed_best(
    log_probs: np.ndarray, vocabulary: BatchVocabulary
) -> tuple[np.ndarray, np.ndarray]:
    """Full-step log-probs (B, V) -> every row's best id within its selection and that
    id's log-prob renormalised over the selection (rows without one: meaningless), in a
    few whole-array operations."""
    assert vocabulary.row_ids is not None and vocabulary.row_valid is not None
    chosen = np.take_along_axis(log_probs, vocabulary.row_ids, axis=1)  # (B, L)
    chosen = np.where(vocabulary.row_valid, chosen, -np.inf)
    columns = chosen.argmax(axis=1)
    rows = np.arange(chosen.shape[0])
    best = chosen[rows, columns].astype(np.float64)
    scores = best - _normaliser(chosen)[:, 0]
    return vocabulary.row_ids[rows, columns], scores.astype(np.float32)


def _normaliser(values: np.ndarray) -> np.ndarray:
    """log(sum(exp(values))) per row, (r, k) -> (r, 1), in float64."""
    values = values.astype(np.float64)
    top = values.max(axis=1, keepdims=True)
    return top + np.log(np.exp(values - top).sum(axis=1, keepdims=True))


def renormalised(log_probs: np.ndarray, selection: np.ndarray) -> np.ndarray:
    """Full-vocabulary log-probs (r, V) renormalised over `selection`; the other columns
    get the lowest finite value (for strategies that read the whole distribution)."""
    out = np.full_like(log_probs, np.finfo(log_probs.dtype).min)
    chosen = log_probs[:, selection]
    out[:, selection] = (chosen - _normaliser(chosen)).astype(log_probs.dtype)
    return out
