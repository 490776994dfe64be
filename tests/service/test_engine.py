"""The engine on a real default bundle: batching must not change results; lifecycle rules."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from service.engine.core import EngineCore
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.requests import Request, RequestStatus
from service.engine.runtime import RuntimeOptions
from service.engine_process.engine_thread import EngineThread
from service.errors import Cancelled, Expired, InternalError
from service.params import DecodingParams
from tests.conftest import TEST_MODELS, heldout
from tests.service.conftest import CollectingListener, make_engine, run_until_idle


@pytest.fixture(scope="module")
def bundle() -> LoadedBundle:
    return load_bundle(
        TEST_MODELS / "translate-en-fr" / "1",
        RuntimeOptions(providers=("cpu",), intra_op_threads=1),
    )


@pytest.fixture(scope="module")
def sources(bundle: LoadedBundle) -> list[np.ndarray]:
    texts = [record["source"] for record in heldout("translate-en-fr")][:12]
    return [
        np.asarray(bundle.tokenizer.encode(t, max_tokens=10**6, field="text").ids, dtype=np.int64)
        for t in texts
    ]


def _engine(bundle: LoadedBundle, max_batch_size: int) -> EngineCore:
    return make_engine(bundle.runtime, max_batch_size)


def _request(source: np.ndarray, **kwargs: object) -> Request:
    return Request(
        request_id="r",
        source_ids=source,
        listener=CollectingListener(),
        params=DecodingParams(max_output_tokens=40, return_attention=True),
        **kwargs,
    )  # type: ignore[arg-type]


_run_until_idle = run_until_idle


def test_continuous_batching_gives_the_same_tokens_as_one_at_a_time(bundle, sources) -> None:
    alone = []
    for source in sources:
        engine = _engine(bundle, max_batch_size=1)
        request = _request(source)
        engine.submit(request)
        _run_until_idle(engine)
        alone.append(request.listener.output)
    engine = _engine(bundle, max_batch_size=4)
    batched = [_request(s) for s in sources]
    for request in batched[:5]:
        engine.submit(request)
    engine.step()  # rows of different lengths join and leave while the rest wait
    for request in batched[5:]:
        engine.submit(request)
    _run_until_idle(engine)
    for single, request in zip(alone, batched, strict=True):
        output = request.listener.output
        assert output is not None and single is not None
        assert output.token_ids == single.token_ids
        np.testing.assert_allclose(output.best.token_scores, single.best.token_scores, atol=1e-4)
        assert output.best.attention.shape == (len(output.token_ids), request.source_length)
        np.testing.assert_allclose(output.best.attention.sum(axis=1), 1.0, atol=1e-4)


def test_max_output_tokens_finishes_by_length(bundle, sources) -> None:
    engine = _engine(bundle, max_batch_size=2)
    request = Request(
        request_id="r",
        source_ids=sources[0],
        listener=CollectingListener(),
        params=DecodingParams(max_output_tokens=1),
    )
    engine.submit(request)
    _run_until_idle(engine)
    assert request.status == RequestStatus.FINISHED_LENGTH
    assert len(request.listener.output.token_ids) == 1


def test_cancel_and_expiry_leave_the_batch_at_the_next_step(bundle, sources) -> None:
    engine = _engine(bundle, max_batch_size=4)
    cancelled, expired, kept = _request(sources[0]), _request(sources[1]), _request(sources[2])
    for request in (cancelled, expired, kept):
        engine.submit(request)
    engine.step()
    assert engine.running_requests == 3
    cancelled.cancel()
    expired.deadline = 0.0  # in the past on the monotonic clock
    engine.step()
    assert engine.running_requests <= 1
    assert isinstance(cancelled.listener.error, Cancelled)
    assert isinstance(expired.listener.error, Expired)
    _run_until_idle(engine)
    assert kept.listener.output is not None


class _BrokenRuntime:
    """Delegates to the real runtime but fails every decoder step."""

    def __init__(self, runtime) -> None:
        self._runtime = runtime
        self.manifest = runtime.manifest

    def encode(self, *args):
        return self._runtime.encode(*args)

    def to_host(self, state):
        return self._runtime.to_host(state)

    def step(self, *args):
        raise RuntimeError("simulated onnxruntime failure")


def test_a_failing_model_fails_its_batch_and_keeps_running(bundle, sources) -> None:
    engine = make_engine(_BrokenRuntime(bundle.runtime), max_batch_size=4)
    first = _request(sources[0])
    engine.submit(first)
    engine.step()
    assert isinstance(first.listener.error, InternalError)
    assert engine.running_requests == 0
    second = _request(sources[1])
    engine.submit(second)  # the engine still takes work
    engine.step()
    assert isinstance(second.listener.error, InternalError)


def test_engine_thread_serves_and_stops(bundle, sources) -> None:
    engine = _engine(bundle, max_batch_size=4)
    thread = EngineThread(engine, "test", idle_poll_seconds=0.05)
    thread.start()
    requests = [_request(s) for s in sources[:6]]
    for request in requests:
        engine.submit(request)
    for request in requests:
        assert request.listener.done.wait(30)
    thread.stop(timeout=5)
    assert all(r.listener.output is not None for r in requests)
    assert not any(t.name == "engine-test" for t in threading.enumerate())


def reference_beam(
    bundle: LoadedBundle, source: np.ndarray, k: int, n_best: int, max_tokens: int
) -> list[tuple[tuple[int, ...], float]]:
    """A straightforward beam search: one request alone, every candidate sorted in Python."""
    special = bundle.manifest.special_tokens
    runtime = bundle.runtime
    encoded = runtime.encode(source[None, :], np.array([source.size], dtype=np.int64))
    mask = np.ones((1, source.size), dtype=bool)
    alive: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    states = encoded.states
    prev = [special.bos_id]
    finished: list[tuple[tuple[int, ...], float]] = []
    while True:
        rows = len(alive)
        out = runtime.step(
            np.asarray(prev, dtype=np.int64),
            np.repeat(encoded.memory, rows, axis=0),
            np.repeat(mask, rows, axis=0),
            states,
        )
        candidates = [
            (total + float(out.log_probs[i, t]), i, t)
            for i, (_, total) in enumerate(alive)
            for t in range(out.log_probs.shape[1])
        ]
        candidates.sort(key=lambda c: -c[0])
        survivors, parents = [], []
        for score, parent, token in candidates:
            if token == special.eos_id:
                finished.append((alive[parent][0], score))
                continue
            survivors.append(((*alive[parent][0], token), score))
            parents.append(parent)
            if len(survivors) == k:
                break
        alive = survivors
        if len(finished) >= k:
            break
        if len(alive[0][0]) >= max_tokens:
            finished.extend(alive)
            break
        if len(finished) >= n_best:
            kept = sorted(s for _, s in finished)[-n_best]
            if max(s for _, s in alive) <= kept:
                break
        index = np.asarray(parents)
        states = {name: value[index] for name, value in out.states.items()}
        prev = [ids[-1] for ids, _ in alive]
    return sorted(finished, key=lambda f: -f[1])[:n_best]


def test_beam_in_a_mixed_batch_matches_the_reference(bundle, sources) -> None:
    engine = _engine(bundle, max_batch_size=16)
    beams = [
        Request(
            request_id=f"b{i}",
            source_ids=sources[i],
            listener=CollectingListener(),
            params=DecodingParams(max_output_tokens=30, beam_size=4, n_best=2),
        )
        for i in range(3)
    ]
    greedy = [_request(sources[i]) for i in range(3, 7)]
    for request in [beams[0], greedy[0], beams[1], greedy[1], greedy[2], beams[2], greedy[3]]:
        engine.submit(request)
    _run_until_idle(engine)
    for request in beams:
        output = request.listener.output
        assert output is not None and len(output.hypotheses) == 2
        expected = reference_beam(bundle, request.source_ids, k=4, n_best=2, max_tokens=30)
        assert [h.token_ids for h in output.hypotheses] == [ids for ids, _ in expected]
        for hypothesis, (_, score) in zip(output.hypotheses, expected, strict=True):
            assert hypothesis.score == pytest.approx(score, abs=1e-3)
        # a beam streams its final best hypothesis' tokens before the result
        assert [t.token_id for t in request.listener.tokens] == list(output.best.token_ids)
    for request in greedy:  # greedy neighbours are unaffected by the beams
        alone = _engine(bundle, max_batch_size=1)
        twin = _request(request.source_ids)
        alone.submit(twin)
        _run_until_idle(alone)
        assert request.listener.output.token_ids == twin.listener.output.token_ids


def test_beam_reserves_its_rows_when_admitted(bundle, sources) -> None:
    engine = _engine(bundle, max_batch_size=5)
    beam = Request(
        request_id="b",
        source_ids=sources[0],
        listener=CollectingListener(),
        params=DecodingParams(max_output_tokens=20, beam_size=4),
    )
    engine.submit(beam)
    others = [_request(s) for s in sources[1:4]]
    for request in others:
        engine.submit(request)
    engine.step()
    assert len(engine.queue) == 2  # 4 rows for the beam + 1 greedy row = 5
    _run_until_idle(engine)
    assert all(r.listener.output is not None for r in [beam, *others])


def _decode_all(bundle: LoadedBundle, sources: list[np.ndarray]) -> list[tuple]:
    engine = _engine(bundle, max_batch_size=6)
    requests = [
        Request(
            request_id=str(i),
            source_ids=s,
            listener=CollectingListener(),
            params=DecodingParams(max_output_tokens=25, beam_size=1 + (i % 3), n_best=1),
        )
        for i, s in enumerate(sources)
    ]
    for request in requests[:4]:
        engine.submit(request)
    engine.step()
    for request in requests[4:]:  # join a running batch: states come back to the host
        engine.submit(request)
    _run_until_idle(engine)
    return [
        (r.listener.output.best.token_ids, round(r.listener.output.best.score, 3)) for r in requests
    ]


def test_io_binding_keeps_results_identical(bundle, sources) -> None:
    bound = load_bundle(
        TEST_MODELS / "translate-en-fr" / "1",
        RuntimeOptions(providers=("cpu",), intra_op_threads=1, io_binding=True),
    )
    assert bound.runtime.io_binding and not bundle.runtime.io_binding
    assert _decode_all(bound, sources) == _decode_all(bundle, sources)
