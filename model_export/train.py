"""Training loop: length-bucketed batches, AdamW, clipping, label smoothing, early stopping.

Teacher forcing loops the exported DecoderStep over target positions (Seq2Seq.forward), so
what is trained is exactly what is exported.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from model_export.base import EncoderDecoder
from model_export.config import ModelConfig, TrainConfig
from model_export.families import build_model

CHECKPOINT_FILE = "best.pt"
CONFIG_FILE = "model_config.json"
RESULT_FILE = "train_result.json"  # the finished run's TrainResult, beside best.pt


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model asked for; the message names both."""


@dataclass(frozen=True)
class Example:
    src: list[int]  # source ids, EOS last
    tgt: list[int]  # target ids, EOS last (no BOS)


@dataclass(frozen=True)
class Batch:
    src_ids: Tensor  # (B, S) int64, padded
    src_lengths: Tensor  # (B,) int64
    tgt_in: Tensor  # (B, T) int64: BOS + target[:-1], padded
    tgt_out: Tensor  # (B, T) int64: target, padded


@dataclass(frozen=True)
class TrainResult:
    steps: int  # optimizer steps taken
    epochs: float  # passes over the training set (fractional)
    seconds: float  # wall-clock time of the loop
    best_valid_loss: float  # per target token, label smoothing off
    best_step: int  # step of the best validation loss
    last_train_loss: float  # mean training loss over the last eval interval
    stopped_by: str  # "max_steps" | "max_epochs" | "time_budget" | "early_stopping"
    history: list[dict[str, float]] = field(default_factory=list)  # per validation

    def summary(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "epochs": round(self.epochs, 3),
            "seconds": round(self.seconds, 1),
            "best_valid_loss": round(self.best_valid_loss, 4),
            "best_step": self.best_step,
            "last_train_loss": round(self.last_train_loss, 4),
            "stopped_by": self.stopped_by,
        }


def make_batches(
    examples: list[Example], *, batch_tokens: int | None, batch_sentences: int
) -> list[list[int]]:
    """Index lists of similar-length examples; each batch's padded size stays in budget."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].src), len(examples[i].tgt)))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        size = len(examples[i].src) + len(examples[i].tgt)
        grown = max(longest, size) * (len(current) + 1)
        too_many = len(current) >= batch_sentences
        if current and (too_many or (batch_tokens is not None and grown > batch_tokens)):
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches


def collate(examples: list[Example], *, pad_id: int, bos_id: int) -> Batch:
    batch = len(examples)
    src_len = max(len(e.src) for e in examples)
    tgt_len = max(len(e.tgt) for e in examples)
    src = torch.full((batch, src_len), pad_id, dtype=torch.long)
    tgt_in = torch.full((batch, tgt_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((batch, tgt_len), pad_id, dtype=torch.long)
    for b, e in enumerate(examples):
        src[b, : len(e.src)] = torch.tensor(e.src)
        tgt_out[b, : len(e.tgt)] = torch.tensor(e.tgt)
        tgt_in[b, : len(e.tgt)] = torch.tensor([bos_id, *e.tgt[:-1]])
    lengths = torch.tensor([len(e.src) for e in examples], dtype=torch.long)
    return Batch(src_ids=src, src_lengths=lengths, tgt_in=tgt_in, tgt_out=tgt_out)


def sequence_loss(
    log_probs: Tensor, targets: Tensor, *, pad_id: int, smoothing: float = 0.0
) -> Tensor:
    """Mean per real target token. log_probs (B, T, V), targets (B, T)."""
    mask = targets != pad_id  # (B, T)
    nll = -log_probs.gather(2, targets.unsqueeze(2)).squeeze(2)  # (B, T)
    if smoothing > 0:
        uniform = -log_probs.mean(dim=2)  # (B, T)
        nll = (1 - smoothing) * nll + smoothing * uniform
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def save_checkpoint(model: EncoderDecoder, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    torch.save({"model_config": model.config.model_dump(), "state_dict": model.state_dict()}, path)
    (directory / CONFIG_FILE).write_text(model.config.model_dump_json(indent=2) + "\n")
    return path


def load_checkpoint(path: Path, config: ModelConfig | None = None) -> EncoderDecoder:
    """Load `path`; with `config`, refuse a checkpoint saved under a different one."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        saved_config = ModelConfig.model_validate(saved["model_config"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"{path}: not a model_export checkpoint: {exc}") from exc
    if config is not None and saved_config != config:
        want, got = config.model_dump(), saved_config.model_dump()
        diffs = ", ".join(
            f"{k}: checkpoint {got[k]!r} != requested {want[k]!r}"
            for k in want
            if want[k] != got[k]
        )
        raise CheckpointError(f"{path}: saved with a different model config ({diffs})")
    model = build_model(saved_config)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


@torch.no_grad()
def evaluate_loss(
    model: EncoderDecoder, examples: list[Example], *, batch_sentences: int = 64
) -> float:
    """Mean NLL per target token (no label smoothing)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for idx in make_batches(examples, batch_tokens=None, batch_sentences=batch_sentences):
        batch = collate(
            [examples[i] for i in idx], pad_id=model.config.pad_id, bos_id=model.config.bos_id
        )
        log_probs = model(batch.src_ids, batch.src_lengths, batch.tgt_in)
        n = int((batch.tgt_out != model.config.pad_id).sum())
        total += float(sequence_loss(log_probs, batch.tgt_out, pad_id=model.config.pad_id)) * n
        tokens += n
    model.train(was_training)
    return total / max(tokens, 1)


def train(
    model: EncoderDecoder,
    train_set: list[Example],
    valid_set: list[Example],
    config: TrainConfig,
    *,
    start: TrainResult | None = None,
) -> TrainResult:
    """Fit `model` in place; on return it holds the best validation checkpoint's weights.

    `start`: the finished run whose best weights `model` holds; training continues its step
    count, best loss and history (with a fresh optimizer and this call's time budget), and
    shuffles by the step count so it meets batches the first run did not reach.
    """
    if not train_set:
        raise ValueError("no training examples")
    step = 0 if start is None else start.steps
    torch.manual_seed(config.seed + step)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed + step)
    valid = valid_set[: config.max_valid_examples] or train_set[: config.max_valid_examples]
    batches = make_batches(
        train_set, batch_tokens=config.batch_tokens, batch_sentences=config.batch_sentences
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    pad, bos = model.config.pad_id, model.config.bos_id
    started = time.monotonic()
    deadline = started + config.minutes * 60
    best, best_step, bad_evals = math.inf, 0, 0
    history: list[dict[str, float]] = []
    if start is not None:
        best, best_step, history = start.best_valid_loss, start.best_step, list(start.history)
    earlier_seconds = 0.0 if start is None else start.seconds
    interval_loss, interval_n, last_train_loss = 0.0, 0, math.nan
    stopped_by = "max_epochs"
    total = min(config.max_steps, config.max_epochs * len(batches))
    bar = tqdm(initial=step, total=total, disable=not config.progress, desc="train", unit="step")

    def validate() -> bool:
        """Record a validation loss; True when patience ran out."""
        nonlocal best, best_step, bad_evals, last_train_loss, interval_loss, interval_n
        last_train_loss = interval_loss / max(interval_n, 1)
        interval_loss, interval_n = 0.0, 0
        loss = evaluate_loss(model, valid)
        history.append({"step": step, "train_loss": last_train_loss, "valid_loss": loss})
        bar.set_postfix(train=f"{last_train_loss:.3f}", valid=f"{loss:.3f}")
        if loss < best:
            best, best_step, bad_evals = loss, step, 0
            save_checkpoint(model, config.checkpoint_dir)
            return False
        bad_evals += 1
        return bad_evals >= config.patience

    model.train()
    done = False
    epoch = 0
    while not done and epoch < config.max_epochs:
        rng.shuffle(batches)
        for idx in batches:
            batch = collate([train_set[i] for i in idx], pad_id=pad, bos_id=bos)
            log_probs = model(batch.src_ids, batch.src_lengths, batch.tgt_in)
            loss = sequence_loss(
                log_probs, batch.tgt_out, pad_id=pad, smoothing=config.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            step += 1
            interval_loss += loss.item()
            interval_n += 1
            bar.update(1)
            if step % config.eval_every == 0 and validate():
                stopped_by, done = "early_stopping", True
            elif step >= config.max_steps:
                stopped_by, done = "max_steps", True
            elif time.monotonic() >= deadline:
                stopped_by, done = "time_budget", True
            if done:
                break
        epoch += 1
    if interval_n or not history:
        validate()
    bar.close()
    best_model = load_checkpoint(config.checkpoint_dir / CHECKPOINT_FILE, model.config)
    model.load_state_dict(best_model.state_dict())
    model.eval()
    result = TrainResult(
        steps=step,
        epochs=step / len(batches),
        seconds=earlier_seconds + time.monotonic() - started,
        best_valid_loss=best,
        best_step=best_step,
        last_train_loss=last_train_loss,
        stopped_by=stopped_by,
        history=history,
    )
    save_result(result, config.checkpoint_dir)
    return result


def save_result(result: TrainResult, directory: Path) -> None:
    """Record a finished run beside its checkpoint, so a build can resume after training."""
    fields = {"summary": result.summary(), "history": result.history}
    (directory / RESULT_FILE).write_text(json.dumps(fields, indent=1) + "\n", encoding="utf-8")


def load_result(directory: Path) -> TrainResult:
    fields = json.loads((directory / RESULT_FILE).read_text(encoding="utf-8"))
    summary = fields["summary"]
    return TrainResult(
        steps=int(summary["steps"]),
        epochs=float(summary["epochs"]),
        seconds=float(summary["seconds"]),
        best_valid_loss=float(summary["best_valid_loss"]),
        best_step=int(summary["best_step"]),
        last_train_loss=float(summary["last_train_loss"]),
        stopped_by=str(summary["stopped_by"]),
        history=list(fields.get("history", [])),
    )
