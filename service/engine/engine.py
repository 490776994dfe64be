"""One model's engine: `step()` glues schedule -> encode/join -> decode step -> update.

The engine runs on its own thread (see `EngineThread`); onnxruntime releases the GIL
while it computes, so the event loop keeps serving while a batch decodes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import numpy as np

from service.bundle import BundleManifest
from service.engine.batch import BatchArrays, RunningBatch
from service.engine.decoding import SearchConfig, StepView, make_search
from service.engine.requests import Request, RequestStatus, TokenEvent
from service.engine.runtime import OnnxSeq2Seq
from service.engine.scheduler import QueueObserver, Scheduler
from service.errors import Unavailable

log = logging.getLogger(__name__)


class EngineObserver(QueueObserver, Protocol):
    """What the engine (and its scheduler) report; `service.metrics` implements it."""

    def encoder_batch(self, size: int, seconds: float, tokens: int) -> None: ...

    def decoder_step(self, size: int, seconds: float) -> None: ...

    def request_admitted(self, queue_seconds: float) -> None: ...

    def request_finished(self, status: RequestStatus, output_tokens: int) -> None: ...

    def queue_depth(self, waiting: int, running: int) -> None: ...

    def model_failure(self) -> None: ...


class ModelEngine:
    """Continuous-batching greedy and beam decoder over one bundle's onnxruntime sessions."""

    def __init__(
        self,
        model: OnnxSeq2Seq,
        scheduler: Scheduler,
        observer: EngineObserver,
    ) -> None:
        self._model = model
        self._manifest: BundleManifest = model.manifest
        self._scheduler = scheduler
        self._observer = observer
        self._batch = RunningBatch(
            {s.name: s.batch_axis for s in self._manifest.states}, to_host=model.to_host
        )

    @property
    def num_running(self) -> int:
        return len(self._batch)

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    def step(self) -> None:
        """One iteration: admit and encode newcomers, run one decoder step, retire rows."""
        admission = self._scheduler.admit(self._batch.reserved_rows)
        for request, reason in admission.dropped:
            request.finish(reason)
            self._observer.request_finished(reason, 0)
        try:
            if admission.admitted:
                self._encode_and_join(list(admission.admitted))
            if len(self._batch):
                self._decode_step()
        except Exception:
            manifest = self._manifest
            log.exception("model %s v%d failed a batch", manifest.name, manifest.version)
            self._observer.model_failure()
            self._fail_running(list(admission.admitted))
        self._observer.queue_depth(self._scheduler.queue_depth, len(self._batch.requests))

    def _fail_running(self, admitted: list[Request]) -> None:
        for request in dict.fromkeys([*self._batch.requests, *admitted]):
            request.finish(RequestStatus.FAILED)
            self._observer.request_finished(RequestStatus.FAILED, request.generated_tokens)
        self._batch.clear()

    def _encode_and_join(self, requests: list[Request]) -> None:
        now = time.monotonic()
        special = self._manifest.special_tokens
        lengths = np.array([r.source_length for r in requests], dtype=np.int64)
        longest = int(lengths.max())
        src_ids = np.full((len(requests), longest), special.pad_id, np.int64)
        for row, request in enumerate(requests):
            src_ids[row, : request.source_length] = request.source_ids
            request.admitted_at = now
            request.status = RequestStatus.RUNNING
            params = request.params
            request.search = make_search(
                SearchConfig(
                    eos_id=special.eos_id,
                    max_tokens=params.max_output_tokens,
                    source_length=request.source_length,
                    keep_attention=params.return_attention,
                    beam_size=params.beam_size,
                    n_best=params.n_best,
                    length_penalty=params.length_penalty,
                )
            )
            self._observer.request_admitted(now - request.arrival)
        started = time.perf_counter()
        encoded = self._model.encode(src_ids, lengths)
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

    def _decode_step(self) -> None:
        arrays = self._batch.arrays
        assert arrays is not None
        rows = len(self._batch)
        started = time.perf_counter()
        out = self._model.step(arrays.prev_ids, arrays.memory, arrays.src_mask, arrays.states)
        seconds = time.perf_counter() - started
        self._observer.decoder_step(rows, seconds)
        if out.log_probs.shape[0] != rows:
            raise RuntimeError(f"decoder returned {out.log_probs.shape[0]} rows for {rows}")
        self._update_requests(out.log_probs, out.attention, out.states, seconds)

    def _update_requests(
        self,
        log_probs: np.ndarray,
        attention: np.ndarray,
        states: dict[str, Any],
        seconds: float,
    ) -> None:
        """The one loop over a step's requests: advance, stream, retire, and regroup rows."""
        best_ids = log_probs.argmax(axis=-1)  # greedy rows need nothing more per request
        best_log_probs = log_probs[np.arange(log_probs.shape[0]), best_ids]
        now = time.monotonic()
        parents: list[np.ndarray] = []
        next_ids: list[np.ndarray] = []
        kept: list[Request] = []
        counts: list[int] = []
        start = 0
        for request, count in zip(self._batch.requests, self._batch.row_counts, strict=True):
            block = slice(start, start + count)
            start += count
            request.compute_seconds += seconds
            abandoned = request.abandoned_status(now)
            if abandoned is not None:
                request.finish(abandoned)
                self._observer.request_finished(abandoned, request.generated_tokens)
                continue
            search = request.search
            assert search is not None
            advance = search.advance(
                StepView(log_probs[block], attention[block], best_ids[block], best_log_probs[block])
            )
            first_index = search.generated_tokens() - len(advance.new_tokens)
            for offset, (token_id, log_prob) in enumerate(advance.new_tokens):
                request.listener.on_token(
                    TokenEvent(index=first_index + offset, token_id=token_id, log_prob=log_prob)
                )
            if search.done:
                request.complete()
                self._observer.request_finished(request.status, request.generated_tokens)
                continue
            parents.append(advance.parents + block.start)
            next_ids.append(advance.next_ids)
            kept.append(request)
            counts.append(int(advance.parents.size))
        if not kept:
            self._batch.clear()
            return
        self._batch.advance(np.concatenate(parents), np.concatenate(next_ids), states, kept, counts)

    def abort_all(self, message: str) -> None:
        """Refuse everything waiting or running (the engine is stopping)."""
        for request in [*self._scheduler.drain_waiting(), *self._batch.requests]:
            if not request.status.is_finished:
                request.status = RequestStatus.FAILED
                request.listener.on_error(Unavailable(message))
        self._batch.clear()


class EngineThread:
    """Runs one ModelEngine's loop on a daemon thread until stopped."""

    def __init__(self, engine: ModelEngine, name: str, idle_poll_seconds: float = 0.5) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._idle_poll = idle_poll_seconds
        self._thread = threading.Thread(target=self._run, name=f"engine-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        scheduler = self.engine.scheduler
        while not self._stop.is_set():
            if scheduler.closed and scheduler.queue_depth == 0 and self.engine.num_running == 0:
                break  # closed and drained: checked here, between steps, so nothing is lost
            scheduler.wait_for_work(self.engine.num_running, self._stop, self._idle_poll)
            if self._stop.is_set():
                break
            self.engine.step()
        self.engine.abort_all("the model was unloaded while this request was in flight")

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end (a closed scheduler ends it once drained)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """The loop has ended (or never started)."""
        return not self._thread.is_alive()

    def stop(self, timeout: float) -> None:
        """Stop after the current step; anything still queued or running is refused."""
        self._stop.set()
        self.engine.scheduler.wake()
        self._thread.join(timeout)
