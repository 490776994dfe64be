"""Re-compute a bundle's test-split figures through a RUNNING server and compare them with the
figures in its bundle.json.

This is the end-to-end check that what the server answers is what was measured: the same
test records, sent as real RPCs (Translate / Summarize / Answer, greedy, pinned to the
bundle's name and version), scored by the same code as at build time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from model_export import bundle_eval
from model_export import evaluate as ev
from seq2seq_client import AsyncSeq2SeqClient, DecodeOptions
from service.bundle import BundleManifest, read_manifest
from service.engine.tokenizer import open_tokenizer
from service.errors import InvalidArgument


@dataclass(frozen=True)
class ServedCheck:
    bundle: str  # name/version
    examples: int  # test records sent
    recorded: dict[str, float]  # bundle.json's metrics (offline, on the same records)
    served: dict[str, float]  # metrics re-computed from the server's answers
    largest_difference: float  # max |served - recorded| over the metrics, in points
    too_long: int = 0  # records left out: the server refuses a source over the model's limit
    in_bundle_json: dict[str, float] | None = None  # bundle.json's figures over all records

    def as_dict(self) -> dict[str, object]:
        return {
            "bundle": self.bundle,
            "examples": self.examples,
            "left_out_too_long": self.too_long,
            "in_bundle_json": self.in_bundle_json,
            "recorded": self.recorded,
            "served": self.served,
            "largest_difference": self.largest_difference,
        }


async def _one(client: AsyncSeq2SeqClient, manifest: BundleManifest, record: dict) -> str:
    options = DecodeOptions(model=manifest.name, model_version=manifest.version)
    if manifest.task == "translate":
        assert manifest.languages is not None
        result = await client.translate(
            record["source"],
            manifest.languages.target,
            source_language=manifest.languages.source,
            options=options,
        )
        return result.text
    if manifest.task == "summarize":
        return (await client.summarize(record["source"], options=options)).text
    answer = await client.answer(record["question"], record["context"], options=options)
    return answer.answer if answer.answerable else ""


async def served_predictions(
    target: str, manifest: BundleManifest, records: list[dict], *, concurrency: int = 16
) -> list[str]:
    """The server's greedy answers for `records`, in order, `concurrency` calls in flight."""
    gate = asyncio.Semaphore(concurrency)
    async with AsyncSeq2SeqClient(target, timeout=120.0) as client:

        async def call(record: dict) -> str:
            async with gate:
                return await _one(client, manifest, record)

        return list(await asyncio.gather(*(call(r) for r in records)))


def _fits(bundle_dir: Path, manifest: BundleManifest, records: list[dict]) -> list[bool]:
    """Whether the server takes each record's source: its own tokenizer wrapper and length
    rule (it refuses a source over the limit with INVALID_ARGUMENT; offline evaluation
    truncates)."""
    tokenizer = open_tokenizer(bundle_dir, manifest)
    fits = []
    for record in records:
        try:
            tokenizer.encode(
                ev.source_text(manifest.task, record),
                max_tokens=manifest.max_source_length,
                field="source",
            )
            fits.append(True)
        except InvalidArgument:
            fits.append(False)
    return fits


def check_served(
    target: str, bundle_dir: Path, data_dir: Path, *, limit: int | None = None
) -> ServedCheck:
    """Send the bundle's test records through the server at `target` and re-score them.

    Records whose source the server would refuse as too long are left out and counted; when
    any are, or with `limit` (only the first N records), `recorded` is re-computed offline on
    exactly the records sent, so the two figures stay comparable.
    """
    manifest = read_manifest(bundle_dir)
    if manifest.evaluation is None:
        raise ValueError(f"{bundle_dir}: bundle.json has no evaluation to compare with")
    scored = bundle_eval.scored_records(data_dir, manifest)
    records = [
        r for r, fits in zip(scored, _fits(bundle_dir, manifest, scored), strict=True) if fits
    ]
    too_long = len(scored) - len(records)
    recorded = manifest.evaluation.metrics
    if limit is not None and limit < len(records):
        records = records[:limit]
    if len(records) < len(scored):
        offline = bundle_eval.greedy_predictions(
            bundle_dir, bundle_eval.DecodeSpec.of(manifest), records
        )
        recorded = bundle_eval.score_predictions(manifest.task, records, offline).metrics
    predictions = asyncio.run(served_predictions(target, manifest, records))
    served = bundle_eval.score_predictions(manifest.task, records, predictions).metrics
    difference = max((abs(served[k] - v) for k, v in recorded.items() if k in served), default=0)
    return ServedCheck(
        bundle=f"{manifest.name}/{manifest.version}",
        examples=len(records),
        recorded=dict(recorded),
        served=served,
        largest_difference=round(difference, 2),
        too_long=too_long,
        in_bundle_json=dict(manifest.evaluation.metrics),
    )
