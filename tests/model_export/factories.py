"""Factories for the model tests: tiny in-memory corpora, a prepared-data folder, configs.

(conftest.py in this folder belongs to the data tests.)
"""

from __future__ import annotations

import hashlib
import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer

from model_export.config import ModelConfig, TrainConfig
from model_export.tokenizer import encode, train_tokenizer
from model_export.train import Example

_LEXICON = {  # a toy English -> French word map; targets are word-by-word translations
    "the": "le", "red": "rouge", "cat": "chat", "dog": "chien", "eats": "mange",
    "sees": "voit", "small": "petit", "big": "grand", "house": "maison", "fish": "poisson",
    "library": "bibliothèque", "for": "pour", "tool": "outil", "data": "données",
    "files": "fichiers", "game": "jeu", "server": "serveur", "client": "client",
}  # fmt: skip


def make_pairs(n: int = 50, *, seed: int = 0) -> list[dict]:
    """`n` translate records {"id", "source", "target"} of 2-6 toy words each."""
    rng = random.Random(seed)
    words = sorted(_LEXICON)
    records = []
    for i in range(n):
        src = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        records.append(
            {"id": f"pkg{i}", "source": " ".join(src), "target": " ".join(_LEXICON[w] for w in src)}
        )
    return records


def make_answer_records(n: int = 50, *, seed: int = 0) -> list[dict]:
    """`n` answer records; every third is unanswerable."""
    rng = random.Random(seed)
    teams = ["Debian Games Team", "Python Team", "Perl Group", "Jane Doe"]
    out = []
    for i in range(n):
        team = rng.choice(teams)
        answerable = i % 3 != 0
        context = f"pkg{i} is a Debian package." + (
            f" It is maintained by {team}." if answerable else ""
        )
        out.append(
            {
                "id": f"pkg{i}",
                "question": f"Who maintains pkg{i}?",
                "context": context,
                "answer": team if answerable else "",
                "answerable": answerable,
            }
        )
    return out


def write_prepared(root: Path, dataset: str, splits: dict[str, list[dict]]) -> Path:
    """A prepared-data folder as model_export.data writes it: JSONL per split + manifest."""
    entries = {}
    for split, records in splits.items():
        path = root / dataset / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        path.write_text(text, encoding="utf-8")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entries[split] = {"file": path.name, "count": len(records), "sha256": digest}
    manifest = {
        "datasets": {dataset: {"splits": entries}},
        "date": "test",
        "release": {"Origin": "Debian", "Codename": "test", "Version": "0"},
        "split_rule": "test fixture",
    }
    (root / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2))
    return root


def tiny_model_config(vocab_size: int, **overrides: object) -> ModelConfig:
    fields: dict[str, object] = {
        "vocab_size": vocab_size,
        "embedding_size": 16,
        "hidden_size": 32,
        "max_source_length": 16,
        "max_target_length": 16,
        "dropout": 0.0,
    }
    return ModelConfig(**(fields | overrides))  # type: ignore[arg-type]


def tiny_examples(records: list[dict], cfg: ModelConfig) -> list[Example]:
    """Translate records as training examples, encoded by the tiny tokenizer."""
    tok = tiny_tokenizer()
    return [
        Example(
            src=encode(tok, r["source"], max_length=cfg.max_source_length),
            tgt=encode(tok, r["target"], max_length=cfg.max_target_length),
        )
        for r in records
    ]


def tiny_train_config(checkpoint_dir: Path, **overrides: object) -> TrainConfig:
    fields: dict[str, object] = {
        "max_steps": 60,
        "minutes": 1.0,
        "batch_sentences": 16,
        "batch_tokens": None,
        "lr": 1e-2,
        "eval_every": 20,
        "label_smoothing": 0.0,
        "threads": 2,
        "checkpoint_dir": checkpoint_dir,
        "progress": False,
    }
    return TrainConfig(**(fields | overrides))  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def tiny_tokenizer() -> Tokenizer:
    """A BPE tokenizer fitted on make_pairs(50); shared by the tests (do not mutate)."""
    pairs = make_pairs(50)
    texts = [r["source"] for r in pairs] + [r["target"] for r in pairs]
    return train_tokenizer(texts, vocab_size=200, min_frequency=1)


def build_tiny_bundle(
    root: Path,
    *,
    data: Path | None = None,
    model: dict[str, object] | None = None,
    train: dict[str, object] | None = None,
    task: Literal["translate", "answer"] = "translate",
    split_punctuation: bool = False,
) -> tuple[Path, Path]:
    """A tiny translate-en-fr (or answer-en) bundle built by the real pipeline in a few
    seconds.

    -> (bundle folder `<root>/models/translate-en-fr/1`, prepared data folder). `data`
    reuses a prepared folder; `model` / `train` override the tiny sizes.
    """
    from model_export.build import build_bundle  # torch: imported by the tests that build

    make = make_pairs if task == "translate" else make_answer_records
    if data is None:
        data = write_prepared(
            root / "data",
            "translate-en-fr" if task == "translate" else task,
            {"train": make(80), "valid": make(10, seed=3), "test": make(24, seed=4)},
        )
    sizes: dict[str, object] = {
        "embedding_size": 16,
        "hidden_size": 32,
        "vocab_size": 200,
        "dropout": 0.0,
    }
    steps: dict[str, object] = {"max_steps": 60, "eval_every": 30, "batch_sentences": 16}
    result = build_bundle(
        task=task,
        languages="en-fr" if task == "translate" else None,
        data_dir=data,
        repo=root / "models",
        version=1,
        minutes=0.5,
        model_overrides=sizes | (model or {}),
        train_overrides=steps | {"lr": 1e-2} | (train or {}),
        work_dir=root / "work",
        progress=False,
        split_punctuation=split_punctuation,
        log=lambda _: None,
    )
    return result.bundle_dir, data
