"""One model's engine core: `step()` glues schedule -> encode/join -> decoder step -> update.

Synchronous and single-threaded: no asyncio, no gRPC, no threads of its own. The serving
layer runs `step()` on an engine thread (service/serving/engine_thread.py); the offline API
(`offline.py`) runs it on the caller's thread. Only `submit` (the queue) is thread-safe.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, cast

import numpy as np

from service.bundle import BundleManifest
from service.engine import shortlist as lexical
from service.engine.batch import BatchArrays, RunningBatch, StateAxes
from service.engine.constraints import restrict_row
from service.engine.policy import BatchingPolicy
from service.engine.queue import QueueObserver, RequestQueue
from service.engine.requests import Request, RequestStatus, TokenEvent
from service.engine.runtime import OnnxSeq2Seq, VocabularyRows
from service.engine.shortlist import (
    BatchVocabulary,
    batch_vocabulary,
    narrowed_best,
    renormalised,
)
from service.engine.strategies import SearchContext, StepView, make_search
from service.errors import Unavailable
from service.params import DecodingParams

log = logging.getLogger(__name__)


class EngineObserver(QueueObserver, Protocol):
    """What the engine reports; `service.metrics` implements it."""

    def encoder_batch(self, size: int, seconds: float, tokens: int) -> None: ...

    def decoder_step(self, size: int, seconds: float) -> None: ...

    def request_admitted(self, queue_seconds: float) -> None: ...

    def request_finished(self, status: RequestStatus, output_tokens: int) -> None: ...

    def queue_depth(self, waiting: int, running: int) -> None: ...

    def model_failure(self) -> None: ...


def _ignore(*args: object) -> None:
    return None


class NullObserver:
    """Reports nowhere (the offline API): every EngineObserver call is a no-op."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _ignore


def state_axes(manifest: BundleManifest) -> dict[str, StateAxes]:
    return {
        s.name: StateAxes(
            batch=s.batch_axis, source=s.source_axis, target=s.target_axis, constant=s.constant
        )
        for s in manifest.states
    }


class EngineCore:
    """Continuous-batching decoder over one bundle's onnxruntime sessions."""

    def __init__(
        self,
        model: OnnxSeq2Seq,
        policy: BatchingPolicy,
        queue: RequestQueue,
        observer: EngineObserver | None = None,
    ) -> None:
        self.model = model
        self.manifest: BundleManifest = model.manifest
        self.policy = policy
        self.queue = queue
        self._observer = observer or cast(EngineObserver, NullObserver())
        self._batch = RunningBatch(state_axes(self.manifest), to_host=model.to_host)
        # The shortlist's vocabulary of the current batch composition: (composition, value)
        self._vocabulary: tuple[int, BatchVocabulary | None] = (-1, None)

    # --- what the serving layer reads -----------------------------------------------------
    def submit(self, request: Request) -> None:
        """Queue a request (thread-safe); refuses at once when the queue is full or closed."""
        self.queue.submit(request)

    @property
    def running_requests(self) -> int:
        return self.policy.running_requests

    @property
    def has_work(self) -> bool:
        return self.policy.running_requests > 0 or len(self.queue) > 0

    def idle_wait(self) -> float | None:
        """Seconds the caller may sleep before the next `step` (None: until an arrival)."""
        if self.queue.closed and self.has_work:
            return 0.0  # draining: no point waiting for a fuller batch
        waiting = self.queue.snapshot() if len(self.queue) else []
        return self.policy.idle_wait(waiting, time.monotonic())

    # --- the step --------------------------------------------------------------------------
    def step(self) -> None:
        """One iteration: retire and admit, encode newcomers, one decoder step, update."""
        waiting = self.queue.snapshot() if len(self.queue) else []
        scheduled = self.policy.schedule(waiting)
        self.queue.remove(scheduled.taken)
        for request, reason in (*scheduled.dropped, *scheduled.retired):
            request.finish(reason)
            self._observer.request_finished(reason, request.generated_tokens)
        try:
            if scheduled.admitted:
                self._encode_and_join(list(scheduled.admitted))
            if len(self._batch):
                self._decode_step()
        except Exception:
            log.exception("model %s v%d failed a batch", self.manifest.name, self.manifest.version)
            self._observer.model_failure()
            self._fail_running()
        self._observer.queue_depth(len(self.queue), self.policy.running_requests)

    def _fail_running(self) -> None:
        for request in self.policy.clear():
            request.finish(RequestStatus.FAILED)
            self._observer.request_finished(RequestStatus.FAILED, request.generated_tokens)
        self._batch.clear()

    def _encode_and_join(self, requests: list[Request]) -> None:
        now = time.monotonic()
        special = self.manifest.special_tokens
        lengths = np.array([r.source_length for r in requests], dtype=np.int64)
        longest = int(lengths.max())
        src_ids = np.full((len(requests), longest), special.pad_id, np.int64)
        for row, request in enumerate(requests):
            src_ids[row, : request.source_length] = request.source_ids
            request.admitted_at = now
            request.status = RequestStatus.RUNNING
            request.row_constraints = [request.constraints] if request.constraints else []
            request.vocab = self._selection(request)
            request.search = make_search(
                SearchContext(
                    params=self._length_rule(request),
                    eos_id=special.eos_id,
                    source_length=request.source_length,
                )
            )
            self._observer.request_admitted(now - request.arrival)
        started = time.perf_counter()
        encoded = self.model.encode(src_ids, lengths)
        seconds = time.perf_counter() - started
        self._observer.encoder_batch(len(requests), seconds, int(lengths.sum()))
        for request in requests:
            request.compute_seconds += seconds
        self._batch.join(
            requests,
            BatchArrays(
                memory=encoded.memory,
                src_mask=np.arange(longest)[None, :] < lengths[:, None],
                prev_ids=np.full(len(requests), special.bos_id, np.int64),
                states=encoded.states,
            ),
        )

    def _selection(self, request: Request) -> np.ndarray | None:
        """The request's own output vocabulary from the model's shortlist (sorted ids), or
        None for the whole vocabulary: no shortlist, switched off, or constraints (whose
        forced tokens may lie outside it)."""
        shortlist = self.model.shortlist
        wanted = request.params.shortlist
        if wanted is None:
            wanted = bool(self.manifest.decoding.shortlist)
        if shortlist is None or not wanted or request.constraints:
            return None
        return shortlist.select(request.source_ids, always=self.manifest.special_tokens.eos_id)

    def _length_rule(self, request: Request) -> DecodingParams:
        """The request's params under the model's max_length_factor (Marian's rule: a
        step is the last once it reaches factor x source length, EOS included)."""
        factor = self.manifest.decoding.max_length_factor
        params = request.params
        if factor is None:
            return params
        limit = math.ceil(factor * request.source_length) + 1
        limit = max(limit, params.min_output_tokens, 1)
        if limit >= params.max_output_tokens:
            return params
        return replace(params, max_output_tokens=limit)

    def _batch_vocabulary(self) -> BatchVocabulary | None:
        """The shortlist's vocabulary for this composition, recomputed when it changes."""
        composition, vocabulary = self._vocabulary
        if composition != self._batch.composition:
            batch = self._batch
            vocabulary = None
            if self.model.shortlist is not None:
                vocabulary = batch_vocabulary(
                    [r.vocab for r in batch.requests],
                    batch.row_counts,
                    self.manifest.vocab_size,
                    max_fraction=lexical.GRAPH_MAX_FRACTION,  # read here: tests set it
                )
            self._vocabulary = (batch.composition, vocabulary)
        return vocabulary

    def _decode_step(self) -> None:
        arrays = self._batch.arrays
        assert arrays is not None
        rows = len(self._batch)
        vocabulary = self._batch_vocabulary()
        restricted = None
        if vocabulary is not None and vocabulary.ids is not None:
            assert vocabulary.mask is not None
            restricted = VocabularyRows(vocabulary.ids, vocabulary.mask)
        started = time.perf_counter()
        out = self.model.step(
            arrays.prev_ids, arrays.memory, arrays.src_mask, arrays.states, restricted
        )
        seconds = time.perf_counter() - started
        self._observer.decoder_step(rows, seconds)
        if out.log_probs.shape[0] != rows:
            raise RuntimeError(f"decoder returned {out.log_probs.shape[0]} rows for {rows}")
        # a full step under a shortlist: its restricted rows are narrowed to their selections
        narrowed = vocabulary if vocabulary is not None and vocabulary.ids is None else None
        columns = None if restricted is None else restricted.ids
        self._update_requests(out.log_probs, out.attention, out.states, seconds, columns, narrowed)

    def _eos_rules(self, log_probs: np.ndarray, columns: np.ndarray | None) -> np.ndarray:
        """EOS gets the lowest finite log-prob on rows below their min_output_tokens; under
        the model's `eos_at_limit` rule (HF's forced_eos_token_id) it is the only choice
        (log-prob 0) at the last token a row may generate."""
        batch = self._batch
        blocked = [r.params.min_output_tokens > r.generated_tokens for r in batch.requests]
        forced = [
            r.params.defaults is not None
            and r.params.defaults.eos_at_limit
            and r.generated_tokens + 1 >= r.params.max_output_tokens
            for r in batch.requests
        ]
        if not any(blocked) and not any(forced):
            return log_probs
        eos = self.manifest.special_tokens.eos_id
        if columns is not None:  # every selection holds EOS (Shortlist.select's `always`)
            eos = int(np.searchsorted(columns, eos))
        lowest = np.finfo(log_probs.dtype).min
        # the step's own output, changed in place (a 128 x 58k copy cost ~3% of a beam step)
        log_probs = log_probs if log_probs.flags.writeable else log_probs.copy()
        log_probs[np.repeat(np.asarray(blocked), batch.row_counts), eos] = lowest
        rows = np.repeat(np.asarray(forced), batch.row_counts)  # (B,)
        log_probs[rows] = lowest
        log_probs[rows, eos] = 0.0
        return log_probs

    def _apply_constraints(self, log_probs: np.ndarray, attention: np.ndarray) -> np.ndarray:
        """Each constrained row's constraints lower what they forbid (extractive spans,
        target prefixes, required terms); unconstrained batches pass untouched."""
        batch = self._batch
        if not any(r.row_constraints for r in batch.requests):
            return log_probs
        log_probs = log_probs if log_probs.flags.writeable else log_probs.copy()
        eos = self.manifest.special_tokens.eos_id
        start = 0
        for request, count in zip(batch.requests, batch.row_counts, strict=True):
            for offset, states in enumerate(request.row_constraints):
                row = start + offset
                restrict_row(log_probs[row], attention[row, : request.source_length], states, eos)
            start += count
        return log_probs

    def _update_requests(
        self,
        log_probs: np.ndarray,
        attention: np.ndarray,
        states: dict[str, Any],
        seconds: float,
        columns: np.ndarray | None = None,
        narrowed: BatchVocabulary | None = None,
    ) -> None:
        """The one loop over a step's requests: advance, stream, retire, and regroup rows.
        `columns`: the token id of each log-prob column (a shortlist step); None: column =
        token id. `narrowed`: a full step whose restricted requests (`request.vocab`) are
        narrowed here to their selection: the best token within it for every row, and the
        renormalised distribution for strategies that read one (beam, sampling).
        Constrained requests never run restricted, so constraints see token ids."""
        log_probs = self._eos_rules(log_probs, columns)
        if columns is None:
            log_probs = self._apply_constraints(log_probs, attention)
        best_columns = log_probs.argmax(axis=-1)  # greedy rows need nothing more per request
        best_log_probs = log_probs[np.arange(log_probs.shape[0]), best_columns]
        best_ids = best_columns if columns is None else columns[best_columns]
        if narrowed is not None:
            narrow_ids, narrow_log_probs = narrowed_best(log_probs, narrowed)
            restricted = narrowed.restricted_rows
            assert restricted is not None
            best_ids = np.where(restricted, narrow_ids, best_ids)
            best_log_probs = np.where(restricted, narrow_log_probs, best_log_probs)
        parents: list[np.ndarray] = []
        next_ids: list[np.ndarray] = []
        kept: list[Request] = []
        counts: list[int] = []
        finished: list[Request] = []
        start = 0
        for request, count in zip(self._batch.requests, self._batch.row_counts, strict=True):
            block = slice(start, start + count)
            start += count
            if request.status.is_finished:  # retired by the policy before this step
                continue
            request.compute_seconds += seconds
            request.decode_steps += 1
            search = request.search
            assert search is not None
            view = StepView(
                log_probs[block],
                attention[block],
                best_ids[block],
                best_log_probs[block],
                vocab_ids=columns,
            )
            if narrowed is not None and request.vocab is not None and _reads_distribution(request):
                view = replace(view, log_probs=renormalised(view.log_probs, request.vocab))
            advance = search.advance(view)
            first_index = search.generated_tokens() - len(advance.new_tokens)
            for offset, (token_id, log_prob) in enumerate(advance.new_tokens):
                request.listener.on_token(
                    TokenEvent(index=first_index + offset, token_id=token_id, log_prob=log_prob)
                )
            if search.done:
                request.complete()
                self._observer.request_finished(request.status, request.generated_tokens)
                finished.append(request)
                continue
            if request.row_constraints:  # follow the rows: reorder, then extend
                request.row_constraints = [
                    tuple(c.after(int(token)) for c in request.row_constraints[int(parent)])
                    for parent, token in zip(advance.parents, advance.next_ids, strict=True)
                ]
            parents.append(advance.parents + block.start)
            next_ids.append(advance.next_ids)
            kept.append(request)
            counts.append(int(advance.parents.size))
        self.policy.update(finished)
        if not kept:
            self._batch.clear()
            return
        self._batch.advance(np.concatenate(parents), np.concatenate(next_ids), states, kept, counts)

    def abort_all(self, message: str) -> None:
        """Refuse everything waiting or running (the engine is stopping)."""
        for request in [*self.queue.drain(), *self.policy.clear()]:
            if not request.status.is_finished:
                request.status = RequestStatus.FAILED
                request.listener.on_error(Unavailable(message))
        self._batch.clear()


def _reads_distribution(request: Request) -> bool:
    """Beam search and sampling read a step's whole distribution; greedy reads only the
    best token the engine computed (`StepView.best_ids`)."""
    return request.params.beam_size > 1 or request.params.sampling
