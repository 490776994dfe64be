"""Imported checkpoints served over gRPC give exactly Hugging Face `generate()`'s tokens.

Four random-weight checkpoints of different shapes (Marian with shared and with separate
embeddings, post-norm BART, pre-norm mBART; asymmetric depths, swish and gelu) are built,
imported with the import command's code and served by the real server on loopback. Every
held-out text that fits is sent twice (greedy, beam 4) while the others are in flight, so
requests share the continuous batch at different positions; each response's tokens must
equal transformers' greedy / beam-4 output for the same text. A bundle whose tokenizer and
vocabulary disagree is refused by name while the others serve.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from model_export.cli import main
from model_export.importers.importer import import_checkpoint
from model_export.importers.served_parity import check_parity
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.server.server import Seq2SeqServer
from tests.integration.conftest import make_settings, rewrite_manifest
from tests.model_export.importers.factories import heldout_texts, make_bart, make_marian

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_TOKENS = 24  # output cap of every request (HF: max_new_tokens)
SOURCES = 200  # held-out texts per model and mode
SHAPES: dict[str, tuple[Any, dict[str, Any]]] = {
    "marian-shared": (make_marian, {}),
    "marian-separate": (
        make_marian,
        {
            "seed": 1,
            "d_model": 24,
            "encoder_layers": 1,
            "decoder_layers": 3,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 3,
            "encoder_ffn_dim": 40,
            "decoder_ffn_dim": 56,
            "activation_function": "gelu",
            "scale_embedding": False,
            "share_encoder_decoder_embeddings": False,
            "tie_word_embeddings": False,
        },
    ),
    "bart": (make_bart, {}),
    "mbart": (make_bart, {"mbart": True, "seed": 2, "encoder_layers": 3, "decoder_layers": 1}),
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The repository, and each bundle's checkpoint folder."""
    root = tmp_path_factory.mktemp("imported-parity")
    repo = root / "models"
    checkpoints = {}
    for name, (make, options) in SHAPES.items():
        folder = make(root / "checkpoints" / name, **options)
        if name == "marian-shared":  # the documented command; its languages from the folder
            assert main(["import", str(folder), "--repo", str(repo), "--name", name]) == 0
        else:
            task = "translate" if name.startswith("marian") else "summarize"
            import_checkpoint(
                folder,
                repo=repo,
                name=name,
                task=task,
                languages="en-fr" if task == "translate" else None,
                threads=1,
                log=lambda _: None,
            )
        checkpoints[name] = folder
    # A broken twin: its manifest claims one more token than its vocab.json holds.
    broken = repo / "marian-broken" / "1"
    shutil.copytree(repo / "marian-shared" / "1", broken)
    vocab_size = json.loads((broken / "bundle.json").read_text())["vocab_size"]
    rewrite_manifest(broken, name="marian-broken", vocab_size=vocab_size + 1)
    return repo, checkpoints


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub(imported) -> AsyncIterator[tuple[pb_grpc.Seq2SeqStub, Seq2SeqServer]]:
    repo, _ = imported
    server = Seq2SeqServer(
        make_settings(model_repository=repo, max_batch_size=32, max_queue_size=4096)
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield pb_grpc.Seq2SeqStub(channel), server
    finally:
        await server.drain_and_stop(grace=2.0)


@pytest.mark.parametrize("name", SHAPES)
async def test_greedy_and_beam_4_equal_transformers_generate(name: str, imported, stub) -> None:
    repo, checkpoints = imported
    _, server = stub
    report = await asyncio.to_thread(
        check_parity,
        f"127.0.0.1:{server.port}",
        checkpoints[name],
        repo / name / "1",
        list(heldout_texts()),
        max_tokens=MAX_TOKENS,
        count=SOURCES,
    )
    assert report.texts == SOURCES
    assert report.mismatches == {"greedy": [], "beam4": []}, report.example
    for lengths in report.lengths.values():  # both ways of ending were exercised
        assert MAX_TOKENS - 1 in lengths and min(lengths) < MAX_TOKENS - 1  # EOS forced last


async def test_verify_parity_command(imported, stub, tmp_path: Path) -> None:
    repo, checkpoints = imported
    _, server = stub
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(heldout_texts()[:40]) + "\n", encoding="utf-8")
    out = tmp_path / "parity.json"
    name = "marian-separate"
    args = ["verify-parity", str(checkpoints[name]), str(repo / name / "1"),
            "--target", f"127.0.0.1:{server.port}", "--texts", str(texts), "--count", "12",
            "--max-tokens", "16", "--out", str(out)]  # fmt: skip
    assert await asyncio.to_thread(main, args) == 0
    report = json.loads(out.read_text())
    assert report["texts"] == 12 and report["mismatches"] == {"greedy": 0, "beam4": 0}


async def test_bundle_whose_tokenizer_and_vocabulary_disagree_is_refused(stub) -> None:
    client, server = stub
    listed = await client.ListModels(pb.ListModelsRequest(), timeout=10)
    assert {m.name for m in listed.models} == set(SHAPES)
    refused = server.repository.refused
    (message,) = [why for folder, why in refused.items() if "marian-broken" in folder]
    assert "marian-broken/1/vocab.json: vocabulary of" in message
    assert "but bundle.json says" in message
