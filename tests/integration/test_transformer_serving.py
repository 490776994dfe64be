"""A Transformer bundle built in the test run, decoded by the engine (its caches padded and
trimmed by their axes) and served over gRPC: the engine's greedy output equals PyTorch's,
also with rows at different positions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import onnx
import pytest
import torch

from model_export.train import load_checkpoint
from model_export.transformer import TransformerSeq2Seq, transformer_states
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.bundle import DECODER_FILE
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.requests import Request
from service.engine.runtime import RuntimeOptions
from service.params import DecodingParams
from service.server.server import Seq2SeqServer
from tests.integration.conftest import make_settings
from tests.model_export.factories import build_tiny_bundle, make_pairs
from tests.service.conftest import CollectingListener, make_engine, run_until_idle

MAX_TARGET = 16  # the model's max_target_length: the cache size and the output cap
HELD_OUT = [r["source"] for r in make_pairs(8, seed=9)]  # not in the training split


@pytest.fixture(scope="module")
def transformer_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("transformer")
    transformer = {"architecture": "transformer", "layers": 2, "heads": 2, "ffn_size": 64}
    bundle_dir, _ = build_tiny_bundle(
        root,
        model=transformer | {"max_source_length": 16, "max_target_length": MAX_TARGET},
        train={"max_steps": 40, "eval_every": 20, "lr": 5e-3},
    )
    return bundle_dir, root / "work"


def _load(bundle_dir: Path) -> LoadedBundle:
    return load_bundle(bundle_dir, RuntimeOptions(providers=("cpu",), intra_op_threads=1))


def _pytorch_greedy(work: Path, bundle: LoadedBundle, texts: list[str]) -> list[list[int]]:
    """PyTorch greedy ids for each text, EOS dropped (as the engine reports them)."""
    model = load_checkpoint(next(work.rglob("best.pt")))
    assert isinstance(model, TransformerSeq2Seq)
    eos = bundle.manifest.special_tokens.eos_id
    out = []
    for text in texts:
        ids = bundle.tokenizer.encode(text, max_tokens=16, field="text").ids
        with torch.inference_mode():
            expected = model.greedy(
                torch.tensor([ids]), torch.tensor([len(ids)]), max_length=MAX_TARGET
            )
        out.append([t for t in expected[0] if t != eos])
    return out


def _request(bundle: LoadedBundle, text: str, name: str, beam_size: int = 1) -> Request:
    ids = bundle.tokenizer.encode(text, max_tokens=16, field="text").ids
    return Request(
        request_id=name,
        source_ids=np.asarray(ids, np.int64),
        params=DecodingParams(
            max_output_tokens=MAX_TARGET, beam_size=beam_size, n_best=1, return_attention=True
        ),
        listener=CollectingListener(),
    )


def _run_mixed(bundle: LoadedBundle) -> list[Request]:
    """Greedy and beam-3 requests, one newcomer per step: each joins at a different
    position (rows change, beams reorder), decoded to the end."""
    engine = make_engine(bundle.runtime, max_batch_size=16)
    requests = [
        _request(bundle, text, str(i), beam_size=3 if i % 3 == 2 else 1)
        for i, text in enumerate(HELD_OUT)
    ]
    for request in requests:
        engine.submit(request)
        engine.step()
    run_until_idle(engine)
    return requests


def test_manifest_describes_the_cache(transformer_bundle) -> None:
    bundle = _load(transformer_bundle[0])
    manifest = bundle.manifest
    assert manifest.architecture == "transformer" and manifest.cell is None
    assert (manifest.attention.kind, manifest.attention.score) == ("soft", "scaled_dot")
    assert manifest.schema_version == 2
    axes = [(s.name, s.batch_axis, s.source_axis, s.target_axis) for s in manifest.states]
    assert axes[0] == ("cross_keys_0", 0, 2, None) and axes[4] == ("self_keys_0", 0, None, 2)
    assert manifest.states == transformer_states(2)
    constant = {s.name for s in manifest.states if s.constant}
    assert constant == {f"cross_{kind}_{i}" for kind in ("keys", "values") for i in (0, 1)}
    outputs = {o.name for o in onnx.load(str(transformer_bundle[0] / DECODER_FILE)).graph.output}
    assert not {f"new_state_{name}" for name in constant} & outputs  # read, never output
    assert "new_state_self_keys_0" in outputs
    assert manifest.training["parity"]["greedy_mismatches"] == 0  # type: ignore[index]


def test_engine_joins_rows_at_different_positions(transformer_bundle) -> None:
    """Requests join the running batch a step apart, greedy and beam mixed: every greedy
    output still equals PyTorch's, and attention rows sum to 1 over the source."""
    bundle_dir, work = transformer_bundle
    bundle = _load(bundle_dir)
    requests = _run_mixed(bundle)
    expected = _pytorch_greedy(work, bundle, HELD_OUT)
    for i, request in enumerate(requests):
        output = request.listener.output
        assert output is not None, request.listener.error
        if request.params.beam_size == 1:
            assert list(output.token_ids) == expected[i], i
        attention = output.best.attention
        if output.token_ids:
            assert attention.shape == (len(output.token_ids), request.source_length)
            np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)


def _decode_mixed(bundle: LoadedBundle) -> list[tuple[tuple[int, ...], float]]:
    outputs = [r.listener.output for r in _run_mixed(bundle)]
    return [(o.best.token_ids, round(o.best.score, 4)) for o in outputs if o is not None]


def test_io_binding_keeps_constant_states_and_results(transformer_bundle) -> None:
    """With IO binding (here on the CPU device) constant states stay bound values from
    step to step and come back only when rows change: results equal the unbound run."""
    bound = load_bundle(
        transformer_bundle[0],
        RuntimeOptions(providers=("cpu",), intra_op_threads=1, io_binding=True),
    )
    assert bound.runtime.io_binding
    plain = _decode_mixed(_load(transformer_bundle[0]))
    assert len(plain) == len(HELD_OUT)
    assert _decode_mixed(bound) == plain


async def test_grpc_serves_the_transformer_like_pytorch(transformer_bundle) -> None:
    bundle_dir, work = transformer_bundle
    bundle = _load(bundle_dir)
    expected = _pytorch_greedy(work, bundle, HELD_OUT)
    server = Seq2SeqServer(
        make_settings(
            model_repository=bundle_dir.parent.parent, max_batch_size=8, max_queue_delay=0.0
        )
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.Seq2SeqStub(channel)

            async def translate(text: str, delay: float, **options: object):
                await asyncio.sleep(delay)  # staggered: later ones join a running batch
                return await stub.Translate(
                    pb.TranslateRequest(
                        text=text, target_language="fr", options=pb.DecodingOptions(**options)
                    ),
                    timeout=60,
                )

            one = await translate(HELD_OUT[0], 0.0)
            together = await asyncio.gather(
                *(translate(text, 0.002 * i) for i, text in enumerate(HELD_OUT)),
                translate(HELD_OUT[1], 0.001, beam_size=4, n_best=2, return_scores=True),
            )
    finally:
        await server.drain_and_stop(grace=2.0)
    assert one.model.name == "translate-en-fr"
    tokens = [[bundle.tokenizer.id_to_token(t) for t in ids] for ids in expected]
    assert list(one.hypotheses[0].target_tokens) == tokens[0]
    *greedy, beam = together
    for i, response in enumerate(greedy):
        assert list(response.hypotheses[0].target_tokens) == tokens[i], HELD_OUT[i]
    assert len(beam.hypotheses) == 2
    scores = [h.score for h in beam.hypotheses]
    assert scores == sorted(scores, reverse=True) and all(np.isfinite(scores))
    assert all(len(h.token_scores) == len(h.target_tokens) for h in beam.hypotheses)
