"""What `seq2seq-export variant` measures for an imported bundle, through the offline engine
(its decoder states have source and target axes, which only the engine's batch handles)."""

from __future__ import annotations

from pathlib import Path

from model_export import bundle_eval
from model_export.importers.graphs import allowed_difference, step_log_probs
from model_export.importers.importer import greedy_texts, loaded_from
from service.bundle import BundleManifest, read_manifest
from service.engine.offline import Seq2SeqEngine


def engine_agreement(
    source_dir: Path, variant_dir: Path, records: list[dict], threads: int, steps: int = 8
) -> bundle_eval.Agreement:
    """Greedy outputs of both bundles on `records`, and the log-prob difference of the first
    `steps` steps fed the source bundle's own tokens."""
    manifest = read_manifest(source_dir)
    a, b = loaded_from(source_dir, manifest, threads), loaded_from(variant_dir, manifest, threads)
    texts = [r["source"] for r in records]
    fitting = [
        t
        for t in texts
        if len(a.tokenizer.encode(t, max_tokens=10**9, field="source").ids)
        <= manifest.max_source_length
    ]
    outputs = [
        [h.best.token_ids for h in Seq2SeqEngine.from_bundle(x).generate_batch(fitting)]
        for x in (a, b)
    ]
    identical = sum(x == y for x, y in zip(*outputs, strict=True))
    worst = 0.0
    start = manifest.special_tokens.bos_id
    for text, tokens in zip(fitting, outputs[0], strict=True):
        source = list(a.tokenizer.encode(text, max_tokens=10**9, field="source").ids)
        decoder_in = [start, *tokens][:steps]
        worst = max(
            worst,
            allowed_difference(
                step_log_probs(b.runtime, source, decoder_in),
                step_log_probs(a.runtime, source, decoder_in),
            ),
        )
    return bundle_eval.Agreement(
        examples=len(fitting),
        max_abs_diff_log_probs=worst,
        greedy_identical=identical / max(len(fitting), 1),
    )


def engine_scores(
    variant_dir: Path, source: BundleManifest, records: list[dict], threads: int
) -> bundle_eval.Scores:
    loaded = loaded_from(variant_dir, source, threads)
    return bundle_eval.score_predictions(source.task, records, greedy_texts(loaded, records))
