"""`seq2seq-export import MARIAN_FOLDER ...`: a Marian NMT model folder -> a bundle.

Steps: read the folder (folder.py) and the model file (container.py), check the
architecture its own config describes (config.py), write the tokenizer, the shortlist and
the graphs (graphs.py), then check against the PyTorch reference (reference.py):
- the tokenizer's ids equal SentencePiece's own (plus </s>) on sample texts;
- the fp32 graphs (the bundle itself, or a scratch copy beside an int8 bundle): teacher-
  forced log-probs within LOG_PROB_TOLERANCE of the reference, and the engine's greedy
  outputs token for token equal to the reference's, with the shortlist off and on (the
  reference restricted to the same selection);
- an int8 bundle: its greedy outputs beside the reference's (recorded, not required: int8
  is not float).
A failed check, or any refusal, leaves nothing written (importer.write_in_place).
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_export.importers.checkpoint import ImportCheckpointError, source_checksums
from model_export.importers.graphs import allowed_difference, step_log_probs
from model_export.importers.importer import (
    SAMPLE_TEXTS,
    ImportResult,
    evaluate_bundle,
    loaded_from,
    require_prepared,
    write_in_place,
)
from model_export.importers.marian_nmt import graphs
from model_export.importers.marian_nmt.config import architecture, parse_config
from model_export.importers.marian_nmt.container import MODEL_YML, read_items
from model_export.importers.marian_nmt.folder import MarianFolder, read_folder
from model_export.importers.marian_nmt.onnx_graph import WeightStore, save
from model_export.importers.marian_nmt.reference import MarianReference
from model_export.importers.marian_nmt.vocabulary import write_vocabularies
from model_export.importers.marian_nmt.weights import MarianWeights
from service.bundle import BundleManifest, Task, write_manifest
from service.engine.offline import Seq2SeqEngine
from service.engine.repository import LoadedBundle
from service.engine.shortlist import read_shortlist

LOG_PROB_TOLERANCE = 1e-3
SHORTLIST_FILE = "lex.s2t.bin"
DEFAULT_SOURCE_TOKENS = 256
DEFAULT_TARGET_TOKENS = 512
CHECK_TOKENS = 48  # greedy outputs compared at most this long


def _languages(folder: MarianFolder, languages: str | None) -> dict[str, str]:
    source, _, target = (languages or "").partition("-")
    if not languages and folder.languages:
        source, target = folder.languages
    if not (2 <= len(source) <= 8 and 2 <= len(target) <= 8):
        raise ImportCheckpointError(
            f"{folder.model}: its name says no language pair (model.<src><trg>.*); give "
            "--languages, e.g. en-pt"
        )
    return {"source": source, "target": target}


def _copy_shortlist(path: Path, bundle_dir: Path) -> Path:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    target = bundle_dir / SHORTLIST_FILE
    target.write_bytes(raw)
    return target


def _description(folder: MarianFolder) -> str:
    info = folder.folder / "model_info.json"
    try:
        name = json.loads(info.read_text(encoding="utf-8")).get("modelName", "")
    except (OSError, ValueError, AttributeError):
        name = ""
    return f"{name} (a Marian NMT model, imported)" if name else ""


def import_marian_folder(
    marian_dir: Path,
    *,
    repo: Path,
    name: str,
    version: int = 1,
    task: Task | None = None,
    languages: str | None = None,
    max_source_length: int | None = None,
    max_target_length: int | None = None,
    texts: tuple[str, ...] = (),
    data_dir: Path | None = None,
    threads: int = 2,
    precision: graphs.Precision | None = None,
    description: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ImportResult:
    """Import a Marian folder as `<repo>/<name>/<version>/`; ImportCheckpointError names
    the file and the problem, and nothing is left behind."""
    started = time.monotonic()
    folder = read_folder(Path(marian_dir))
    if task not in (None, "translate"):
        raise ImportCheckpointError(f"{folder.model}: a Marian NMT model translates; --task {task}")
    pair = _languages(folder, languages)
    require_prepared(data_dir)
    items = read_items(folder.model)
    config = parse_config(items[MODEL_YML].text(), folder.model)
    arch = architecture(config, folder.model)
    weights = MarianWeights(items, arch, folder.model)
    chosen: graphs.Precision = precision or ("int8" if weights.quantized else "fp32")
    torch.set_num_threads(threads)
    return write_in_place(
        Path(repo) / name / str(version),
        lambda building: _build(
            folder,
            weights,
            config,
            building,
            fields={
                "name": name,
                "version": version,
                "languages": pair,
                "description": description if description is not None else _description(folder),
            },
            precision=chosen,
            lengths=(
                max_source_length or DEFAULT_SOURCE_TOKENS,
                max_target_length or DEFAULT_TARGET_TOKENS,
            ),
            texts=(*SAMPLE_TEXTS, *texts),
            data_dir=data_dir,
            threads=threads,
            log=log,
        ),
        overwrite=overwrite,
        started=started,
        log=log,
    )


def _write_graphs(
    weights: MarianWeights, bundle_dir: Path, options: graphs.BuildOptions, shortlist: bool
) -> None:
    store = WeightStore()
    built = {
        "encoder.onnx": graphs.build_encoder(weights, store, options),
        "decoder.onnx": graphs.build_decoder(weights, store, options, shortlist=False),
    }
    if shortlist:
        built[graphs.SHORTLIST_DECODER_FILE] = graphs.build_decoder(
            weights, store, options, shortlist=True
        )
    save(built, bundle_dir)


def _build(
    folder: MarianFolder,
    weights: MarianWeights,
    config: dict[str, Any],
    bundle_dir: Path,
    *,
    fields: dict[str, object],
    precision: graphs.Precision,
    lengths: tuple[int, int],
    texts: tuple[str, ...],
    data_dir: Path | None,
    threads: int,
    log: Callable[[str], None],
) -> tuple[BundleManifest, dict[str, object]]:
    arch = weights.arch
    log(f"[1/4] Marian model: {folder.model} ({arch.decoder_kind} decoder, Marian {arch.version})")
    tokenizer = write_vocabularies(folder, bundle_dir, arch.source_vocab, arch.target_vocab)
    shortlist_spec = None
    if folder.shortlist is not None:
        copied = _copy_shortlist(folder.shortlist, bundle_dir)
        selections = read_shortlist(
            copied,
            source_vocab=arch.source_vocab,
            target_vocab=arch.target_vocab,
            shared=folder.shared_vocab,
            verify_checksum=True,
        )
        shortlist_spec = {
            "file": SHORTLIST_FILE,
            "first_num": selections.first_num,
            "best_num": selections.best_num,
            "shared": folder.shared_vocab,
            "source_vocab_size": arch.source_vocab,
        }
    options = graphs.BuildOptions(
        precision=precision,
        max_positions=max(lengths),
        suppressed_ids=(tokenizer.unk_id,),  # Marian's beam search: allow-unk is off
    )
    log(f"      {weights.parameters():,} parameters {weights.weight_types}; writing {precision}")
    log(f"[2/4] graphs -> {bundle_dir}")
    _write_graphs(weights, bundle_dir, options, shortlist_spec is not None)
    weights.check_all_read()
    normalize = folder.normalize
    manifest_fields: dict[str, Any] = fields | {
        "task": "translate",
        "architecture": "marian_nmt",
        "attention": {"kind": "soft", "scope": "global", "score": "scaled_dot"},
        "special_tokens": {
            "pad_id": tokenizer.pad_id,
            "bos_id": tokenizer.eos_id,  # read by no graph: Marian starts from zeros
            "eos_id": tokenizer.eos_id,
            "unk_id": tokenizer.unk_id,
        },
        "vocab_size": arch.target_vocab,
        "hidden_size": arch.dim,
        "max_source_length": lengths[0],
        "max_target_length": lengths[1],
        "precision": precision,
        "states": graphs.state_specs(arch),
        "tokenizer": tokenizer.spec,
        "decoding": {
            "beam": "hf" if normalize > 0 else "gnmt",
            "length_penalty": normalize,
            "early_stopping": "full",
            "shortlist": True if shortlist_spec else None,
            "max_length_factor": folder.length_factor,
        },
        "shortlist": shortlist_spec,
        "imported_from": {
            "format": "marian",
            "architecture": f"Marian {arch.version}".strip(),
            "model_type": f"transformer, {arch.decoder_kind} decoder",
            "files": source_checksums(folder.folder),
            "suppressed_ids": list(options.suppressed_ids),
        },
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    training: dict[str, object] = {
        "source_config": config,
        "decoder_config": folder.decoder_config,
        "parameters": weights.parameters(),
        "weight_types": weights.weight_types,
        "activation_multipliers": len(weights.alphas),
        "precision": precision,
        "onnxruntime_int8": precision == "int8",
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    manifest = write_manifest(bundle_dir, manifest_fields | {"training": training})

    log("[3/4] checks: tokenizer ids; log-probs and greedy outputs against the PyTorch reference")
    loaded = loaded_from(bundle_dir, manifest, threads)
    reference = MarianReference(weights)
    checks = _checks(folder, weights, reference, loaded, texts, options, threads)
    log(f"      {checks}")
    manifest_fields["training"] = training | {"checks": checks}
    if data_dir is not None:
        log(f"[4/4] evaluate: greedy over the test split of {data_dir}")
        manifest_fields["evaluation"] = evaluate_bundle(loaded, Path(data_dir))
    manifest = write_manifest(bundle_dir, manifest_fields)
    return manifest, checks


def _sources(folder: MarianFolder, loaded: LoadedBundle, texts: tuple[str, ...]) -> list[list[int]]:
    """Ids of the sample texts, refusing a tokenizer that disagrees with SentencePiece."""
    import sentencepiece

    model = sentencepiece.SentencePieceProcessor(model_file=str(folder.source_vocab))
    eos = loaded.manifest.special_tokens.eos_id
    limit = loaded.manifest.max_source_length
    sources = []
    for text in texts:
        ours = list(loaded.tokenizer.encode(text, max_tokens=10**6, field="text").ids)
        if ours != [*model.encode(text), eos]:
            raise ImportCheckpointError(
                f"{loaded.path / 'vocab.json'}: token ids differ from SentencePiece's on {text!r}"
            )
        sources.append([*ours[: limit - 1], eos] if len(ours) > limit else ours)
    return sources


def _checks(
    folder: MarianFolder,
    weights: MarianWeights,
    reference: MarianReference,
    loaded: LoadedBundle,
    texts: tuple[str, ...],
    options: graphs.BuildOptions,
    threads: int,
) -> dict[str, object]:
    sources = _sources(folder, loaded, texts)
    manifest = loaded.manifest
    eos = manifest.special_tokens.eos_id
    expected = [
        reference.greedy(
            s, eos_id=eos, max_tokens=_limit(manifest, s), suppressed=options.suppressed_ids
        )
        for s in sources
    ]
    checks: dict[str, object] = {"tokenizer_texts": len(texts), "sources": len(sources)}
    if options.precision == "fp32":
        checks |= _float_checks(loaded, reference, sources, expected, options)
    else:
        scratch = loaded.path / ".fp32-check"
        scratch.mkdir()
        try:
            for file in manifest.files:
                if not file.endswith(".onnx") and file != "weights.bin":
                    shutil.copy2(loaded.path / file, scratch / file)
            fp32 = graphs.BuildOptions("fp32", options.max_positions, options.suppressed_ids)
            _write_graphs(weights, scratch, fp32, manifest.shortlist is not None)
            float_bundle = loaded_from(scratch, manifest, threads)
            checks |= _float_checks(float_bundle, reference, sources, expected, fp32)
        finally:
            shutil.rmtree(scratch)
        got = _greedy(loaded, sources, shortlist=False)
        checks["int8_greedy_identical_to_reference"] = sum(
            g == e for g, e in zip(got, expected, strict=True)
        )
    return checks


def _limit(manifest: BundleManifest, source: list[int]) -> int:
    """The output tokens the engine allows `source` in the checks (EOS included)."""
    factor = manifest.decoding.max_length_factor
    rule = math.ceil(factor * len(source)) + 1 if factor else CHECK_TOKENS
    return min(CHECK_TOKENS, rule)


def _greedy(loaded: LoadedBundle, sources: list[list[int]], *, shortlist: bool) -> list[list[int]]:
    engine = Seq2SeqEngine.from_bundle(loaded, max_batch_size=len(sources))
    options: dict[str, Any] = {"max_output_tokens": CHECK_TOKENS}
    if loaded.manifest.shortlist is not None:
        options["shortlist"] = shortlist
    return [list(r.best.token_ids) for r in engine.generate_batch(sources, **options)]


def _float_checks(
    loaded: LoadedBundle,
    reference: MarianReference,
    sources: list[list[int]],
    expected: list[list[int]],
    options: graphs.BuildOptions,
) -> dict[str, object]:
    """The fp32 graphs against the reference: log-probs, then greedy with the shortlist
    off and (when the bundle has one) on."""
    worst = 0.0
    start = loaded.manifest.special_tokens.bos_id
    for source, target in zip(sources, expected, strict=True):
        got = step_log_probs(loaded.runtime, source, [start, *target])
        worst = max(worst, allowed_difference(got, reference.log_probs(source, target)))
    if worst > LOG_PROB_TOLERANCE:
        raise ImportCheckpointError(
            f"{loaded.path / 'decoder.onnx'}: log-probs differ from the PyTorch reference by "
            f"{worst:.2e} (tolerance {LOG_PROB_TOLERANCE:g})"
        )
    checks: dict[str, object] = {"max_abs_diff_log_probs": worst}
    mismatches = sum(
        g != e for g, e in zip(_greedy(loaded, sources, shortlist=False), expected, strict=True)
    )
    if mismatches:
        raise ImportCheckpointError(
            f"{loaded.path / 'decoder.onnx'}: greedy outputs differ from the PyTorch reference "
            f"on {mismatches} of {len(sources)} sources"
        )
    checks["greedy_mismatches"] = 0
    shortlist = loaded.runtime.shortlist
    if shortlist is not None:
        eos = loaded.manifest.special_tokens.eos_id
        restricted = [
            reference.greedy(
                s,
                eos_id=eos,
                max_tokens=_limit(loaded.manifest, s),
                suppressed=options.suppressed_ids,
                allowed=shortlist.select(s, always=eos),
            )
            for s in sources
        ]
        got = _greedy(loaded, sources, shortlist=True)
        mismatches = sum(g != e for g, e in zip(got, restricted, strict=True))
        if mismatches:
            raise ImportCheckpointError(
                f"{loaded.path / graphs.SHORTLIST_DECODER_FILE}: greedy outputs differ from the "
                f"reference restricted to the shortlist on {mismatches} of {len(sources)} sources"
            )
        checks["shortlist_greedy_mismatches"] = 0
        checks["shortlist_changed_outputs"] = sum(
            r != e for r, e in zip(restricted, expected, strict=True)
        )
    return checks
