"""`seq2seq-export verify-parity`: an imported bundle served by a RUNNING server gives the
tokens Hugging Face `generate()` gives from the checkpoint folder it was imported from.

Texts are sent as real RPCs (greedy and beam 4, pinned to the bundle's name and version,
many in flight so that they share continuous batches); transformers decodes the same
texts, batched; every response's tokens must equal its output.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_export.importers.reference import generated_ids
from seq2seq_client import AsyncSeq2SeqClient, DecodeOptions
from service.bundle import BundleManifest, read_manifest


@dataclass(frozen=True)
class ParityReport:
    bundle: str  # name/version
    texts: int
    max_output_tokens: int
    mismatches: dict[str, list[int]]  # "greedy" / "beam4" -> indices of differing texts
    example: dict[str, object] | None  # the first difference, for the reader
    lengths: dict[str, dict[int, int]]  # mode -> transformers' output length (no EOS) -> texts

    def as_dict(self) -> dict[str, object]:
        return {
            "bundle": self.bundle,
            "texts": self.texts,
            "max_output_tokens": self.max_output_tokens,
            "mismatches": {k: len(v) for k, v in self.mismatches.items()},
            "example": self.example,
            "output_lengths": self.lengths,
        }


async def _served_tokens(
    target: str, manifest: BundleManifest, texts: list[str], beam: int, tokens: int
) -> list[list[str]]:
    options = DecodeOptions(
        model=manifest.name,
        model_version=manifest.version,
        beam_size=beam,
        max_output_tokens=tokens,
    )
    gate = asyncio.Semaphore(64)
    async with AsyncSeq2SeqClient(target, timeout=300.0) as client:

        async def one(text: str) -> list[str]:
            async with gate:
                if manifest.task == "translate":
                    assert manifest.languages is not None
                    result = await client.translate(
                        text,
                        manifest.languages.target,
                        source_language=manifest.languages.source,
                        options=options,
                    )
                else:
                    result = await client.summarize(text, options=options)
                return list(result.hypotheses[0].target_tokens)

        return list(await asyncio.gather(*(one(t) for t in texts)))


def check_parity(
    target: str,
    checkpoint: Path,
    bundle_dir: Path,
    texts: list[str],
    *,
    max_tokens: int = 64,
    count: int = 200,
) -> ParityReport:
    """Greedy and beam-4 tokens through the server vs transformers' generate(), for the
    first `count` of `texts` within the model's source limit."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    manifest = read_manifest(bundle_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    sources = [tokenizer(t)["input_ids"] for t in texts]
    fits = [len(s) <= manifest.max_source_length for s in sources]
    texts = [t for t, ok in zip(texts, fits, strict=True) if ok][:count]
    sources = [s for s, ok in zip(sources, fits, strict=True) if ok][:count]
    special: dict[str, Any] = {"pad_id": tokenizer.pad_token_id, "eos_id": tokenizer.eos_token_id}
    mismatches: dict[str, list[int]] = {}
    lengths: dict[str, dict[int, int]] = {}
    example = None
    for name, beam in (("greedy", 1), ("beam4", 4)):
        expected = generated_ids(
            model, sources, batch_size=32, num_beams=beam, max_new_tokens=max_tokens, **special
        )
        served = asyncio.run(_served_tokens(target, manifest, texts, beam, max_tokens))
        wrong = []
        for index, (ids, tokens) in enumerate(zip(expected, served, strict=True)):
            if tokenizer.convert_ids_to_tokens(list(ids)) != tokens:
                wrong.append(index)
                example = example or {
                    "mode": name,
                    "text": texts[index],
                    "transformers": tokenizer.convert_ids_to_tokens(list(ids)),
                    "served": tokens,
                }
        mismatches[name] = wrong
        lengths[name] = dict(sorted(Counter(len(ids) for ids in expected).items()))
    return ParityReport(
        bundle=f"{manifest.name}/{manifest.version}",
        texts=len(texts),
        max_output_tokens=max_tokens,
        mismatches=mismatches,
        example=example,
        lengths=lengths,
    )
