"""A hard-attention bundle built in the test run, decoded by the engine and served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model_export.train import load_checkpoint
from service.engine.offline import Seq2SeqEngine
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
    engine = Seq2SeqEngine(bundle_dir, intra_op_threads=1, max_batch_size=8)
    assert engine.manifest.attention.kind == "hard"
    texts = [r["source"] for r in make_pairs(12, seed=4)]
    for beam_size in (1, 3):
        results = engine.generate_batch(
            texts, max_output_tokens=12, return_attention=True, beam_size=beam_size
        )
        for text, result in zip(texts, results, strict=True):
            attention = result.best.attention
            if attention is None:  # an empty output has no attention rows
                assert result.best.token_ids == ()
                continue
            source_length = len(engine.encode(text))
            assert attention.shape == (len(result.best.token_ids), source_length)
            np.testing.assert_array_equal(attention.max(axis=1), 1.0)  # one position per token
            np.testing.assert_array_equal(attention.sum(axis=1), 1.0)


def test_engine_greedy_matches_pytorch_on_hard_attention(hard_bundle) -> None:
    bundle_dir, work = hard_bundle
    engine = Seq2SeqEngine(bundle_dir, intra_op_threads=1, max_batch_size=4)
    model = load_checkpoint(next(work.rglob("best.pt")))
    model.eval()
    eos = engine.manifest.special_tokens.eos_id
    for text in [r["source"] for r in make_pairs(6, seed=9)]:
        ids = engine.encode(text)
        (result,) = engine.generate_batch([ids], max_output_tokens=12)
        with torch.inference_mode():
            expected = model.greedy(torch.tensor([ids]), torch.tensor([len(ids)]), max_length=12)
        assert list(result.best.token_ids) == [t for t in expected[0] if t != eos]
