"""A copy-attention answer bundle (edge-punctuation tokenizer) built in the test run: its
source-id state survives the engine's continuous batching unchanged, and the server and the
engine-based scorer answer with it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from model_export.engine_eval import score_with_engine
from model_export.evaluate import source_text
from model_export.grounded_check import check_grounded
from model_export.train import load_checkpoint
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.requests import Request
from service.engine.runtime import RuntimeOptions
from service.params import DecodingParams
from service.server.server import Seq2SeqServer
from tests.integration.conftest import make_settings
from tests.model_export.factories import build_tiny_bundle, make_answer_records
from tests.service.conftest import CollectingListener, make_engine, run_until_idle

MAX_SOURCE, MAX_TARGET = 48, 12
HELD_OUT = make_answer_records(9, seed=9)  # contexts of two lengths: with and without answer


@pytest.fixture(scope="module")
def copy_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("copy")
    bundle_dir, data = build_tiny_bundle(
        root,
        task="answer",
        model={
            "copy_attention": True,
            "max_source_length": MAX_SOURCE,
            "max_target_length": MAX_TARGET,
        },
        train={"max_steps": 60, "eval_every": 30},
        split_punctuation=True,
    )
    return bundle_dir, root / "work", data


def _load(bundle_dir: Path) -> LoadedBundle:
    return load_bundle(bundle_dir, RuntimeOptions(providers=("cpu",), intra_op_threads=1))


def _ids(bundle: LoadedBundle, record: dict) -> tuple[int, ...]:
    text = source_text("answer", record)
    return bundle.tokenizer.encode(text, max_tokens=MAX_SOURCE, field="context").ids


def test_the_manifest_declares_the_source_ids_state(copy_bundle) -> None:
    manifest = _load(copy_bundle[0]).manifest
    states = {s.name: s for s in manifest.states}
    assert (states["src_ids"].batch_axis, states["src_ids"].source_axis) == (0, 1)
    assert states["hidden"].source_axis is None and manifest.schema_version == 2
    assert manifest.training["model_config"]["copy_attention"] is True  # type: ignore[index]
    assert manifest.training["tokenizer"]["split_punctuation"] is True  # type: ignore[index]
    assert manifest.training["parity"]["greedy_mismatches"] == 0  # type: ignore[index]
    assert "unseen_exact_match" not in manifest.evaluation.metrics  # no unseen twins here
    assert {"noans_precision", "noans_recall"} <= set(manifest.evaluation.metrics)


def test_engine_batches_rows_of_different_source_lengths_like_pytorch(copy_bundle) -> None:
    """Requests join one per step (the source-id state padded at the end to the longest
    source, trimmed when it leaves), greedy and beam mixed: every greedy output equals
    PyTorch's alone, with extractive decoding off (the raw model)."""
    bundle_dir, work, _ = copy_bundle
    bundle = _load(bundle_dir)
    engine = make_engine(bundle.runtime, max_batch_size=16)
    requests = []
    for i, record in enumerate(HELD_OUT):
        beam = 3 if i % 4 == 3 else 1
        request = Request(
            request_id=str(i),
            source_ids=np.asarray(_ids(bundle, record), np.int64),
            params=DecodingParams(
                max_output_tokens=MAX_TARGET, beam_size=beam, n_best=1, extractive=False
            ),
            listener=CollectingListener(),
        )
        requests.append(request)
        engine.submit(request)
        engine.step()
    run_until_idle(engine)
    model = load_checkpoint(next(work.rglob("best.pt")))
    eos = bundle.manifest.special_tokens.eos_id
    lengths = {len(_ids(bundle, r)) for r in HELD_OUT}
    assert len(lengths) > 1, lengths
    for record, request in zip(HELD_OUT, requests, strict=True):
        output = request.listener.output
        assert output is not None, request.listener.error
        if request.params.beam_size > 1:
            continue
        ids = _ids(bundle, record)
        with torch.inference_mode():
            (alone,) = model.greedy(
                torch.tensor([ids]), torch.tensor([len(ids)]), max_length=MAX_TARGET
            )
        assert list(output.token_ids) == [t for t in alone if t != eos], record


async def test_the_server_answers_with_spans_of_the_context(copy_bundle) -> None:
    bundle_dir, _, data = copy_bundle
    server = Seq2SeqServer(
        make_settings(model_repository=bundle_dir.parent.parent, max_queue_delay=0.0)
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.Seq2SeqStub(channel)
            replies = [
                await stub.Answer(
                    pb.AnswerRequest(question=r["question"], context=r["context"]), timeout=30
                )
                for r in HELD_OUT
            ]
        grounded = await asyncio.to_thread(
            check_grounded, f"127.0.0.1:{server.port}", bundle_dir, data, limit=None
        )
    finally:
        await server.drain_and_stop(grace=2.0)
    assert grounded["answers_outside_context"] == []
    offline = score_with_engine(bundle_dir, data, limit=None, threads=1)  # extractive: default
    assert grounded["trained"] == offline["trained"]  # the server answers as the engine does
    for record, reply in zip(HELD_OUT, replies, strict=True):
        assert reply.model.name == "answer-en"
        assert not reply.answerable or reply.answer in record["context"], reply.answer


def test_the_engine_scorer_reports_grounded_figures(copy_bundle) -> None:
    bundle_dir, _, data = copy_bundle
    raw = score_with_engine(bundle_dir, data, limit=None, extractive=False, threads=1)
    spans = score_with_engine(bundle_dir, data, limit=None, extractive=True, threads=1)
    assert raw["bundle"] == "answer-en/1" and raw["sources_cut"] == 0
    assert spans["trained"]["in_context"] == 100.0  # type: ignore[index]
    figures = spans["trained"]["metrics"]  # type: ignore[index]
    assert {"exact_match", "f1", "noans_precision", "noans_recall"} <= set(figures)
    assert spans["trained"]["by_field"]["?"]["count"] == 24  # type: ignore[index]
