"""One bundle end to end: data -> tokenizer -> train -> export -> parity -> evaluate -> manifest."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from model_export import data as prepared
from model_export import evaluate as ev
from model_export.base import count_parameters
from model_export.bundle_eval import (
    DecodeSpec,
    greedy_predictions,
    score_predictions,
    subset,
    trained,
    unseen_twins,
)
from model_export.config import ModelConfig, TrainConfig
from model_export.export import OPSET, PINNED_EXPORTER, Exporter, export_onnx
from model_export.families import build_model
from model_export.parity import check_parity
from model_export.tokenizer import (
    BOS_ID,
    EOS_ID,
    NO_ANSWER_ID,
    PAD_ID,
    SEP_ID,
    UNK_ID,
    encode_batch,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from model_export.train import (
    CHECKPOINT_FILE,
    RESULT_FILE,
    Example,
    TrainResult,
    load_checkpoint,
    load_result,
    train,
)
from service.bundle import (
    TOKENIZER_FILE,
    BundleManifest,
    SpecialTokens,
    Task,
    files_bytes,
    schema_version_for,
    write_manifest,
)

# task -> (max_source_length, max_target_length) in tokens incl. EOS
DEFAULT_LENGTHS: dict[str, tuple[int, int]] = {
    "translate": (96, 96),
    "summarize": (192, 48),
    "answer": (512, 32),  # contexts of 400+ tokens (a question, a long description)
}

# A copy model's log-probs carry the attention weights' float error relatively (a copied
# probability is a sum of weights; 1e-5 on a weight is 1e-4 on the log of a 0.1 sum), so
# they are held to 1e-3; memory, states and attention keep 1e-4, and greedy outputs must
# still be identical.
COPY_LOG_PROB_TOLERANCE = 1e-3


class BuildError(RuntimeError):
    """A bundle could not be built; the message says which stage and why."""


@dataclass(frozen=True)
class BuildResult:
    bundle_dir: Path  # <repo>/<name>/<version>
    manifest: BundleManifest  # as written to bundle.json
    train: TrainResult  # the training run
    parity: dict[str, object]  # parity.check_parity report
    size_bytes: int  # all files in the bundle


def bundle_name(task: Task, languages: str | None) -> str:
    return f"translate-{languages}" if task == "translate" else f"{task}-en"


def dataset_name(task: Task, languages: str | None) -> str:
    if task != "translate":
        if languages:
            raise BuildError(f"--languages is only valid for translate, not {task}")
        return task
    if not languages or languages.count("-") != 1:
        raise BuildError(f"translate needs --languages like 'en-fr', not {languages!r}")
    return f"translate-{languages}"


def _config_problems(exc: ValidationError) -> str:
    """One line per problem, without pydantic's URLs."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"])
        lines.append(f"{field}: {message}" if field else message)
    return "bad model config: " + "; ".join(lines)


def attention_spec(cfg: ModelConfig) -> dict[str, object]:
    """The manifest's `attention` entry for a model config."""
    spec: dict[str, object] = {
        "kind": cfg.attention_kind,
        "scope": cfg.attention_scope,
        "score": cfg.attention_score,
    }
    if cfg.attention_window is not None:
        spec["window"] = cfg.attention_window
    return spec


def _examples(tok, task: Task, records: list[dict], cfg: ModelConfig) -> list[Example]:
    src = encode_batch(
        tok, [ev.source_text(task, r) for r in records], max_length=cfg.max_source_length
    )
    tgt = encode_batch(
        tok, [ev.target_text(task, r) for r in records], max_length=cfg.max_target_length
    )
    return [Example(src=s, tgt=t) for s, t in zip(src, tgt, strict=True)]


_SOURCES = {  # dataset kind -> the public text it is built from
    "translate": "Debian package descriptions: English (Translation-en) and their human "
    "translations (Translation-{target}), Debian main",
    "summarize": "Debian package descriptions (Translation-en): long description -> short "
    "description, Debian main",
    "answer": "Debian package records (Packages, Translation-en): questions grounded in a "
    "context built from the record, some unanswerable, Debian main",
}


def _provenance(data_dir: Path, dataset: str) -> dict[str, object]:
    """DataProvenance fields from the prepared folder's manifest."""
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    release = manifest.get("release", {})
    splits = manifest.get("datasets", {}).get(dataset, {}).get("splits", {})
    kind = "translate" if dataset.startswith("translate-") else dataset
    snapshot = (
        f"{release.get('Origin', 'Debian')} {release.get('Codename', '?')} "
        f"{release.get('Version', '')}".strip()
        + f", Release file dated {manifest.get('date', '?')}"
    )
    return {
        "source": _SOURCES[kind].format(target=dataset.rpartition("-")[2]),
        "snapshot": snapshot,
        "dataset_sha256": prepared.dataset_sha256(data_dir),
        "split": manifest.get("split_rule", "stable hash of the package name"),
        "counts": {name: int(entry.get("count", 0)) for name, entry in splits.items()},
    }


def build_bundle(
    *,
    task: Task,
    languages: str | None = None,
    data_dir: Path = Path("data/prepared"),
    repo: Path = Path("models"),
    version: int = 1,
    minutes: float = 10.0,
    threads: int = 2,
    max_examples: int | None = None,
    max_eval_examples: int | None = None,
    model_overrides: dict[str, object] | None = None,
    train_overrides: dict[str, object] | None = None,
    exporter: Exporter = PINNED_EXPORTER,
    work_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    split_punctuation: bool = False,
    resume: bool = False,
    continue_training: bool = False,
    log: Callable[[str], None] = print,
) -> BuildResult:
    """Build `<repo>/<name>/<version>/` and return what was measured on the way.

    `split_punctuation`: the tokenizer keeps punctuation at word edges apart from the word
    (model_export.tokenizer), so copied names and URLs do not carry a sentence's full stop.
    `resume`: a run whose training finished (its checkpoint folder holds best.pt, the
    tokenizer and train_result.json) is exported, checked and scored without training again.
    `continue_training`: such a run trains `minutes` more from its best weights (its step
    count, best loss and history continue), then is exported, checked and scored.
    """
    started = time.monotonic()
    dataset = dataset_name(task, languages)
    name = bundle_name(task, languages)
    final_dir = Path(repo) / name / str(version)
    if final_dir.exists() and any(final_dir.iterdir()) and not overwrite:
        raise BuildError(f"{final_dir} already exists; pick another --version or --overwrite")
    model_fields: dict[str, object] = {"vocab_size": 4000}
    src_len, tgt_len = DEFAULT_LENGTHS[task]
    model_fields |= {"max_source_length": src_len, "max_target_length": tgt_len}
    model_fields |= {k: v for k, v in (model_overrides or {}).items() if v is not None}
    try:  # refuse an impossible config before any data is read or anything is written
        model_cfg = ModelConfig(pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, **model_fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise BuildError(_config_problems(exc)) from exc
    # Built beside the final folder (a name the server's repository scan ignores) and moved
    # into place only when every stage passed: a failed build overwrites nothing.
    bundle_dir = final_dir.parent / f".building-{version}"
    shutil.rmtree(bundle_dir, ignore_errors=True)
    torch.set_num_threads(threads)
    train_cfg = TrainConfig(
        minutes=minutes,
        threads=threads,
        progress=progress,
        # default per repository too, so builds of one name into two repositories (a bundle
        # and its no-attention twin) never share a checkpoint folder
        checkpoint_dir=(work_dir or Path("runs") / Path(repo).name / name / str(version))
        / "checkpoints",
        **(train_overrides or {}),
    )
    seed = train_cfg.seed
    checkpoints = train_cfg.checkpoint_dir
    finished = [checkpoints / f for f in (CHECKPOINT_FILE, RESULT_FILE, TOKENIZER_FILE)]
    if (resume or continue_training) and not all(f.is_file() for f in finished):
        flag = "--resume" if resume else "--continue-training"
        raise BuildError(
            f"{flag}: {checkpoints} holds no finished training "
            f"({', '.join(f.name for f in finished if not f.is_file())} missing)"
        )

    log(f"[1/6] data: {dataset} from {data_dir}")
    train_records = subset(prepared.load_split(data_dir, dataset, "train"), max_examples, seed)
    valid_records = subset(
        prepared.load_split(data_dir, dataset, "valid"), train_cfg.max_valid_examples, seed
    )
    all_test = prepared.load_split(data_dir, dataset, "test")
    test_records = subset(trained(all_test), max_eval_examples, seed)
    unseen_records = unseen_twins(all_test, test_records)  # answer: the same, worded anew
    log(
        f"      train {len(train_records)}, valid {len(valid_records)}, test {len(test_records)}"
        + (f" (+{len(unseen_records)} with unseen phrasings)" if unseen_records else "")
    )

    punctuation = ", punctuation split at word edges" if split_punctuation else ""
    log(f"[2/6] tokenizer: BPE, vocab {model_cfg.vocab_size}{punctuation}, training split only")
    if resume or continue_training:
        tok = load_tokenizer(checkpoints / TOKENIZER_FILE)
        log(f"      the finished run's, from {checkpoints}")
    else:
        texts = [ev.source_text(task, r) for r in train_records] + [
            ev.target_text(task, r) for r in train_records
        ]
        tok = train_tokenizer(
            texts, vocab_size=model_cfg.vocab_size, split_punctuation=split_punctuation
        )
        save_tokenizer(tok, checkpoints / TOKENIZER_FILE)
    model_cfg = ModelConfig.model_validate(
        model_cfg.model_dump() | {"vocab_size": tok.get_vocab_size()}
    )
    train_set = _examples(tok, task, train_records, model_cfg)
    valid_set = _examples(tok, task, valid_records, model_cfg)
    test_set = _examples(tok, task, test_records, model_cfg)

    torch.manual_seed(seed)
    model = build_model(model_cfg)
    params = count_parameters(model)
    if resume:
        log(f"[3/6] train: resumed, {params:,} parameters")
        model = load_checkpoint(checkpoints / CHECKPOINT_FILE, model_cfg)
        result = load_result(checkpoints)
    elif continue_training:
        earlier = load_result(checkpoints)
        log(f"[3/6] train: {minutes} min more after {earlier.steps} steps, {params:,} parameters")
        model = load_checkpoint(checkpoints / CHECKPOINT_FILE, model_cfg)
        result = train(model, train_set, valid_set, train_cfg, start=earlier)
    else:
        log(f"[3/6] train: {params:,} parameters, budget {minutes} min, {threads} threads")
        result = train(model, train_set, valid_set, train_cfg)
    log(f"      {result.summary()}")

    log(f"[4/6] export ({exporter}, opset {OPSET}) -> {bundle_dir}")
    bundle_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, bundle_dir, exporter=exporter)
    save_tokenizer(tok, bundle_dir / TOKENIZER_FILE)

    log("[5/6] parity: PyTorch vs onnxruntime (CPU provider)")
    report = check_parity(
        model,
        bundle_dir,
        test_set,
        threads=threads,
        log_prob_tolerance=COPY_LOG_PROB_TOLERANCE if model_cfg.copy_attention else None,
    )
    log(
        f"      log-probs max abs diff {report['max_abs_diff_log_probs']:.2e}, "
        f"greedy mismatches {report['greedy_mismatches']}/{report['greedy_examples']}"
    )

    special: dict[str, int] = {
        "pad_id": PAD_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "unk_id": UNK_ID,
    }
    if task == "answer":
        special |= {"sep_id": SEP_ID, "no_answer_id": NO_ANSWER_ID}
    log(f"[6/6] evaluate: greedy over {len(test_set)} test examples (onnxruntime)")
    spec = DecodeSpec(
        task=task,
        special=SpecialTokens(**special),
        max_source_length=model_cfg.max_source_length,
        max_target_length=model_cfg.max_target_length,
    )
    predictions = greedy_predictions(bundle_dir, spec, test_records, threads=threads)
    scores = score_predictions(task, test_records, predictions)
    metrics = dict(scores.metrics)
    if unseen_records:
        unseen = greedy_predictions(bundle_dir, spec, unseen_records, threads=threads)
        unseen_scores = score_predictions(task, unseen_records, unseen).metrics
        metrics |= {f"unseen_{k}": unseen_scores[k] for k in ("exact_match", "f1")}
    evaluation = {
        "num_examples": len(test_records),
        "metrics": metrics,
        "baselines": ev.baselines(task, train_records, test_records),
        "by_source_length": scores.by_source_length,
        "decoding": "greedy",
        "data": _provenance(Path(data_dir), dataset),
    }
    log(f"      {metrics} baselines {evaluation['baselines']}")

    source_lang, _, target_lang = (languages or "").partition("-")
    manifest = write_manifest(
        bundle_dir,
        {
            "name": name,
            "version": version,
            "task": task,
            "languages": {"source": source_lang, "target": target_lang}
            if task == "translate"
            else None,
            "architecture": model_cfg.architecture,
            "cell": model_cfg.cell,
            "attention": attention_spec(model_cfg),
            "special_tokens": special,
            "vocab_size": model_cfg.vocab_size,
            "hidden_size": model_cfg.hidden_size,
            "max_source_length": model_cfg.max_source_length,
            "max_target_length": model_cfg.max_target_length,
            "precision": "fp32",
            "schema_version": schema_version_for(model.state_specs()),
            "states": [s.model_dump(exclude_none=True) for s in model.state_specs()],
            "evaluation": evaluation,
            "training": {
                "model_config": model_cfg.model_dump(mode="json"),
                "train_config": train_cfg.model_dump(mode="json"),
                "run": result.summary(),
                "examples": {
                    "train": len(train_set),
                    "valid": len(valid_set),
                    "test": len(test_set),
                    "test_unseen_phrasings": len(unseen_records),
                },
                "tokenizer": {
                    "kind": "bpe",
                    "vocab_size": model_cfg.vocab_size,
                    "split_punctuation": split_punctuation,
                },
                "parameters": count_parameters(model),
                "exporter": exporter,
                "opset": OPSET,
                "parity": report,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "build_seconds": round(time.monotonic() - started, 1),
            },
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    if final_dir.exists():
        shutil.rmtree(final_dir)  # only with --overwrite, checked above
    bundle_dir.rename(final_dir)
    bundle_dir = final_dir
    size = files_bytes(bundle_dir)
    log(f"done: {bundle_dir} ({size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")
    return BuildResult(
        bundle_dir=bundle_dir, manifest=manifest, train=result, parity=report, size_bytes=size
    )
