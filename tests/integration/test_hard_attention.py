"""A hard-attention bundle built in the test run, decoded by the engine and served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from service.engine.engine import ModelEngine
from service.engine.scheduler import Scheduler, SchedulerConfig

from benchmarks.offline import CollectingListener, NullObserver
from model_export.train import load_checkpoint
from service.engine.repository import load_bundle
from service.engine.requests import DecodeParams, Request
from service.engine.runtime import RuntimeOptions
from tests.model_export.factories import build_tiny_bundle, make_pairs


@pytest.fixture(scope="module")
def hard_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hard")
    bundle_dir, _ = build_tiny_bundle(
        root, model={"attention_kind": "hard"}, train={"max_steps": 40, "eval_every": 20}
    )
    return bundle_dir, root / "work"


def test_engine_decodes_a_hard_attention_bundle(hard_bundle) -> None:
    bundle_dir, _ = hard_bundle
    bundle = load_bundle(bundle_dir, RuntimeOptions(providers=("cpu",), intra_op_threads=1))
    assert bundle.manifest.attention.kind == "hard"
    engine = ModelEngine(
        bundle.runtime,
        Scheduler(SchedulerConfig(max_batch_size=8, max_queue_size=32, max_queue_delay=0.0)),
        NullObserver(),
    )
    texts = [r["source"] for r in make_pairs(12, seed=4)]
    requests = []
    for i, text in enumerate(texts):
        ids = bundle.tokenizer.encode(text, max_tokens=64, field="text").ids
        params = DecodeParams(
            max_output_tokens=12, return_attention=True, beam_size=1 + (i % 2) * 2
        )
        requests.append(
            Request(
                request_id=str(i),
                source_ids=np.asarray(ids, np.int64),
                params=params,
                listener=CollectingListener(),
            )
        )
    for request in requests:
        engine.scheduler.submit(request)
    while engine.scheduler.queue_depth or engine.num_running:
        engine.step()
    for request in requests:
        output = request.listener.output
        assert output is not None, request.listener.error
        attention = output.best.attention
        if attention is None:  # an empty output has no attention rows
            assert output.token_ids == ()
            continue
        assert attention.shape == (len(output.token_ids), request.source_length)
        np.testing.assert_array_equal(attention.max(axis=1), 1.0)  # one position per token
        np.testing.assert_array_equal(attention.sum(axis=1), 1.0)


def test_engine_greedy_matches_pytorch_on_hard_attention(hard_bundle) -> None:
    bundle_dir, work = hard_bundle
    bundle = load_bundle(bundle_dir, RuntimeOptions(providers=("cpu",), intra_op_threads=1))
    model = load_checkpoint(next(work.rglob("best.pt")))
    model.eval()
    engine = ModelEngine(
        bundle.runtime,
        Scheduler(SchedulerConfig(max_batch_size=4, max_queue_size=32, max_queue_delay=0.0)),
        NullObserver(),
    )
    for text in [r["source"] for r in make_pairs(6, seed=9)]:
        ids = bundle.tokenizer.encode(text, max_tokens=64, field="text").ids
        request = Request(
            request_id="r",
            source_ids=np.asarray(ids, np.int64),
            params=DecodeParams(max_output_tokens=12),
            listener=CollectingListener(),
        )
        engine.scheduler.submit(request)
        while engine.scheduler.queue_depth or engine.num_running:
            engine.step()
        with torch.inference_mode():
            expected = model.greedy(torch.tensor([ids]), torch.tensor([len(ids)]), max_length=12)
        eos = bundle.manifest.special_tokens.eos_id
        assert list(request.listener.output.token_ids) == [t for t in expected[0] if t != eos]
