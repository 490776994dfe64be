"""`seq2seq-export import HF_DIR --repo MODEL_REPO --name NAME --version N`: a local Hugging
Face checkpoint -> a bundle, written beside its final folder and moved into place only
when every check passed (a failed import writes nothing)."""

from __future__ import annotations

import random
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_export.export import OPSET, PINNED_EXPORTER, Exporter
from model_export.importers import family_for, supported
from model_export.importers.checkpoint import (
    CONFIG_FILE,
    Checkpoint,
    ImportCheckpointError,
    load_model,
    read_checkpoint,
    source_checksums,
)
from model_export.importers.family import BundleTokenizer, Family
from model_export.importers.graphs import export_graphs, teacher_forced_difference
from model_export.importers.reference import generated_ids
from model_export.importers.rules import ImportedRules, imported_rules
from model_export.importers.stack import state_specs
from service.bundle import BundleManifest, Task, files_bytes, write_manifest
from service.engine.offline import Seq2SeqEngine
from service.engine.repository import LoadedBundle
from service.engine.runtime import OnnxSeq2Seq, RuntimeOptions
from service.engine.tokenizer import open_tokenizer

DEFAULT_TASK = {"marian": "translate", "bart": "summarize", "mbart": "translate"}
# Texts the tokenizer check always runs, besides any given: scripts, digits, odd spacing.
SAMPLE_TEXTS = (
    "Establish TCP connection using SOCKS4/5 or HTTP tunnel",
    "  Lua bindings for   Pure Data (version 2.0)  ",
    "Bibliothèque partagée pour la gestion des fenêtres; ça marche à 100 %.",
    "Übersetzung: größer als 3 — 「テスト」 😀",
)
LOG_PROB_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ImportResult:
    bundle_dir: Path
    manifest: BundleManifest
    checks: dict[str, object]  # the parity report recorded in the manifest
    size_bytes: int


def _task_and_languages(
    checkpoint: Checkpoint, task: Task | None, languages: str | None
) -> tuple[Task, dict[str, str] | None]:
    chosen: Task = task or DEFAULT_TASK[checkpoint.model_type]  # type: ignore[assignment]
    if chosen != "translate":
        if languages:
            raise ImportCheckpointError(f"--languages is only valid for translate, not {chosen}")
        return chosen, None
    config = checkpoint.tokenizer_config
    source, _, target = (languages or "").partition("-")
    source = source or str(config.get("source_lang") or "")
    target = target or str(config.get("target_lang") or "")
    if not (2 <= len(source) <= 8 and 2 <= len(target) <= 8):
        raise ImportCheckpointError(
            f"{checkpoint.folder / 'tokenizer_config.json'}: names no source_lang / target_lang; "
            "give --languages, e.g. en-fr"
        )
    return chosen, {"source": source, "target": target}


def _check_vocabulary(checkpoint: Checkpoint, model: Any, tokenizer: BundleTokenizer) -> int:
    vocab = int(model.lm_head.out_features)
    if vocab != tokenizer.vocab_size:
        relation = "larger" if vocab > tokenizer.vocab_size else "smaller"
        raise ImportCheckpointError(
            f"{checkpoint.folder / CONFIG_FILE}: the model's vocabulary of {vocab} ids is "
            f"{relation} than its tokenizer's {tokenizer.vocab_size}"
        )
    return vocab


def _random_sources(
    vocab: int, special: set[int], count: int, longest: int, seed: int
) -> list[list[int]]:
    rng = random.Random(seed)
    ordinary = [i for i in range(vocab) if i not in special]
    return [
        [rng.choice(ordinary) for _ in range(rng.randint(1, longest - 1))] for _ in range(count)
    ]


def _checks(
    checkpoint: Checkpoint,
    family: Family,
    model: Any,
    loaded: LoadedBundle,
    rules: ImportedRules,
    texts: tuple[str, ...],
    threads: int,
) -> dict[str, object]:
    """Tokenizer ids, teacher-forced log-probs and greedy outputs against transformers."""
    manifest = loaded.manifest
    special = manifest.special_tokens
    reference = family.reference_tokenizer(checkpoint.folder)
    token_mismatches = [
        t
        for t in texts
        if list(loaded.tokenizer.encode(t, max_tokens=10**6, field="text").ids)
        != list(reference(t)["input_ids"])
    ]
    if token_mismatches:
        raise ImportCheckpointError(
            f"{loaded.path / (manifest.tokenizer.vocab or manifest.tokenizer.file)}: token ids "
            f"differ from transformers' tokenizer on {len(token_mismatches)} of {len(texts)} "
            f"texts, e.g. {token_mismatches[0]!r}"
        )
    specials = {special.pad_id, special.eos_id, special.bos_id, *rules.suppressed_ids}
    longest = min(manifest.max_source_length, 16)
    sources = _random_sources(manifest.vocab_size, specials, 8, longest, seed=7)
    sources = [[*s, special.eos_id] for s in sources]
    steps = min(manifest.max_target_length, 12)
    expected = generated_ids(
        model,
        sources,
        pad_id=special.pad_id,
        eos_id=special.eos_id,
        num_beams=1,
        max_new_tokens=steps,
    )
    worst = teacher_forced_difference(
        model, loaded.runtime, sources, [list(e) for e in expected], special.bos_id
    )
    if worst > LOG_PROB_TOLERANCE:
        raise ImportCheckpointError(
            f"{loaded.path / 'decoder.onnx'}: log-probs differ from transformers' by {worst:.2e}"
            f" (tolerance {LOG_PROB_TOLERANCE:g})"
        )
    engine = Seq2SeqEngine.from_bundle(loaded, max_batch_size=len(sources))
    got = [r.best.token_ids for r in engine.generate_batch(sources, max_output_tokens=steps)]
    mismatches = sum(g != e for g, e in zip(got, expected, strict=True))
    if mismatches:
        raise ImportCheckpointError(
            f"{loaded.path / 'decoder.onnx'}: greedy outputs differ from transformers' "
            f"generate() on {mismatches} of {len(sources)} random sources"
        )
    return {
        "tokenizer_texts": len(texts),
        "max_abs_diff_log_probs": worst,
        "greedy_sources": len(sources),
        "greedy_steps": steps,
        "greedy_mismatches": 0,
        "threads": threads,
    }


def loaded_from(folder: Path, manifest: BundleManifest, threads: int) -> LoadedBundle:
    """A bundle folder opened with a given manifest (one being written has none yet)."""
    options = RuntimeOptions(providers=("cpu",), intra_op_threads=threads)
    return LoadedBundle(
        manifest=manifest,
        path=folder,
        runtime=OnnxSeq2Seq(folder, manifest, options),
        tokenizer=open_tokenizer(folder, manifest),
    )


def greedy_texts(loaded: LoadedBundle, records: list[dict]) -> list[str]:
    """Greedy outputs through the offline engine; a source over the model's limit is cut
    to it (EOS kept), as the build's evaluation of our own bundles does."""
    from model_export import evaluate as ev

    manifest = loaded.manifest
    limit, eos = manifest.max_source_length, manifest.special_tokens.eos_id
    sources = []
    for record in records:
        ids = loaded.tokenizer.encode(
            ev.source_text(manifest.task, record), max_tokens=10**9, field="source"
        ).ids
        sources.append(ids if len(ids) <= limit else (*ids[: limit - 1], eos))
    engine = Seq2SeqEngine.from_bundle(loaded, max_batch_size=32)
    return [r.best.text for r in engine.generate_batch(sources)]


def evaluate_bundle(loaded: LoadedBundle, data_dir: Path) -> dict[str, object]:
    """The manifest's `evaluation`: greedy over the test split, scored as the build scores
    our own bundles, beside the same trivial baselines."""
    from model_export import data as prepared
    from model_export import evaluate as ev
    from model_export.build import _provenance
    from model_export.bundle_eval import dataset_of, score_predictions

    manifest = loaded.manifest
    dataset = dataset_of(manifest)
    test = prepared.load_split(data_dir, dataset, "test")
    train = prepared.load_split(data_dir, dataset, "train")
    scores = score_predictions(manifest.task, test, greedy_texts(loaded, test))
    return {
        "num_examples": len(test),
        "metrics": scores.metrics,
        "baselines": ev.baselines(manifest.task, train, test),
        "by_source_length": scores.by_source_length,
        "decoding": "greedy",
        "data": _provenance(data_dir, dataset),
    }


def import_checkpoint(
    hf_dir: Path,
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
    exporter: Exporter = PINNED_EXPORTER,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ImportResult:
    """Import `hf_dir` as `<repo>/<name>/<version>/`; ImportCheckpointError names the file
    at fault, and nothing is left behind."""
    started = time.monotonic()
    checkpoint = read_checkpoint(Path(hf_dir))
    family = family_for(checkpoint.model_type)
    if family is None:
        raise ImportCheckpointError(
            f"{checkpoint.folder / CONFIG_FILE}: model_type {checkpoint.model_type!r} "
            f"({checkpoint.architecture or 'no architecture'}) cannot be imported; "
            f"supported: {supported()}"
        )
    chosen_task, language_pair = _task_and_languages(checkpoint, task, languages)
    require_prepared(data_dir)
    torch.set_num_threads(threads)
    return write_in_place(
        Path(repo) / name / str(version),
        lambda building: _build(
            checkpoint,
            family,
            building,
            name=name,
            version=version,
            task=chosen_task,
            languages=language_pair,
            lengths=(max_source_length, max_target_length),
            texts=(*SAMPLE_TEXTS, *texts),
            data_dir=data_dir,
            threads=threads,
            exporter=exporter,
            log=log,
        ),
        overwrite=overwrite,
        started=started,
        log=log,
    )


def require_prepared(data_dir: Path | None) -> None:
    """--data, when given, must be a folder `python -m model_export.data prepare` wrote."""
    if data_dir is not None and not (Path(data_dir) / "manifest.json").is_file():
        raise ImportCheckpointError(
            f"{Path(data_dir) / 'manifest.json'}: missing; --data takes a folder written by "
            "`python -m model_export.data prepare`"
        )


def write_in_place(
    final_dir: Path,
    build: Callable[[Path], tuple[BundleManifest, dict[str, object]]],
    *,
    overwrite: bool,
    started: float,
    log: Callable[[str], None],
) -> ImportResult:
    """Run `build` in a hidden folder beside `final_dir` and move it into place only when it
    returns: a failed import (any exception) leaves nothing behind, not even the folders
    it created for the repository or the name."""
    if final_dir.exists() and any(final_dir.iterdir()) and not overwrite:
        raise ImportCheckpointError(
            f"{final_dir}: already exists; pick another --version or --overwrite"
        )
    created = [p for p in (final_dir.parent.parent, final_dir.parent) if not p.exists()]
    building = final_dir.parent / f".building-{final_dir.name}"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        manifest, checks = build(building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        for folder in reversed(created):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if final_dir.exists():
        shutil.rmtree(final_dir)  # only with --overwrite, checked above
    building.rename(final_dir)
    size = files_bytes(final_dir)
    log(f"done: {final_dir} ({size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")
    return ImportResult(bundle_dir=final_dir, manifest=manifest, checks=checks, size_bytes=size)


def _build(
    checkpoint: Checkpoint,
    family: Family,
    bundle_dir: Path,
    *,
    name: str,
    version: int,
    task: Task,
    languages: dict[str, str] | None,
    lengths: tuple[int | None, int | None],
    texts: tuple[str, ...],
    data_dir: Path | None,
    threads: int,
    exporter: Exporter,
    log: Callable[[str], None],
) -> tuple[BundleManifest, dict[str, object]]:
    import transformers

    # Our log says what was loaded; transformers' progress bars and load reports would
    # bury a refusal's one line.
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
    log(f"[1/4] checkpoint: {checkpoint.folder} ({checkpoint.architecture})")
    tokenizer = family.write_tokenizer(checkpoint, bundle_dir)
    model_class = getattr(transformers, family.model_types[checkpoint.model_type])
    model = load_model(checkpoint, model_class)
    vocab = _check_vocabulary(checkpoint, model, tokenizer)
    try:
        rules = imported_rules(model.generation_config, vocab)
    except ValueError as exc:
        raise ImportCheckpointError(f"{checkpoint.folder / CONFIG_FILE}: {exc}") from exc
    positions = family.max_positions(model)
    source_limit = min(lengths[0] or 512, positions)
    target_limit = min(lengths[1] or 512, positions)
    parameters = sum(p.numel() for p in model.parameters())
    log(f"      {parameters:,} parameters, vocabulary {vocab}, rules {rules.decoding}")

    log(f"[2/4] export ({exporter}, opset {OPSET}) -> {bundle_dir}")
    export_graphs(family.stack_parts(model, rules), bundle_dir, exporter=exporter)
    config = model.config
    fields: dict[str, object] = {
        "name": name,
        "version": version,
        "task": task,
        "languages": languages,
        "architecture": family.name,
        "attention": {"kind": "soft", "scope": "global", "score": "scaled_dot"},
        "special_tokens": {
            "pad_id": tokenizer.pad_id,
            "bos_id": rules.decoder_start_id,
            "eos_id": tokenizer.eos_id,
            "unk_id": tokenizer.unk_id,
        },
        "vocab_size": vocab,
        "hidden_size": int(config.d_model),
        "max_source_length": source_limit,
        "max_target_length": target_limit,
        "precision": "fp32",
        "states": state_specs(len(model.model.decoder.layers)),
        "tokenizer": tokenizer.spec,
        "decoding": rules.decoding.model_dump(),
        "imported_from": {
            "architecture": checkpoint.architecture,
            "model_type": checkpoint.model_type,
            "files": source_checksums(checkpoint.folder),
            "suppressed_ids": list(rules.suppressed_ids),
            "forced_bos_id": rules.forced_bos_id,
            "ignored_generation": rules.ignored,
            "transformers": transformers.__version__,
        },
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    training: dict[str, object] = {
        "source_config": config.to_diff_dict(),
        "generation_defaults": rules.defaults,
        "parameters": parameters,
        "exporter": exporter,
        "opset": OPSET,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    manifest = write_manifest(bundle_dir, fields | {"training": training})  # the checks read it

    log("[3/4] checks: tokenizer ids, log-probs and greedy outputs against transformers")
    loaded = loaded_from(bundle_dir, manifest, threads)
    checks = _checks(checkpoint, family, model, loaded, rules, texts, threads)
    log(f"      {checks}")
    fields["training"] = training | {"checks": checks}
    if data_dir is not None:
        log(f"[4/4] evaluate: greedy over the test split of {data_dir}")
        fields["evaluation"] = evaluate_bundle(loaded, Path(data_dir))
        log(f"      {fields['evaluation']['metrics']}")  # type: ignore[index]
    manifest = write_manifest(bundle_dir, fields)
    return manifest, checks
