"""The recipe for the default bundles committed under `models/`.

    python -m model_export defaults --data data/prepared --repo models

One entry per bundle; the figures each build measured land in its bundle.json. On the
2-core CPU machine the whole recipe takes about 3 hours (the answer model trains up to 85
minutes in two runs: 25, then up to 60 more from its best weights, stopped early by its
validation loss after 51 in the committed build). Each bundle
also has its own command: `seq2seq-export build --task translate --languages en-de --minutes 14`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.bundle import Task


@dataclass(frozen=True)
class Recipe:
    task: Task
    languages: str | None  # "en-fr" for translate, None otherwise
    minutes: float  # training time budget on 2 CPU threads
    max_eval_examples: int | None  # None = the whole test split
    max_steps: int | None = None  # optimizer steps at most (a bound a busy machine cannot cut)
    copy_attention: bool = False  # pointer-generator decoder (copies source tokens)
    split_punctuation: bool = False  # tokenizer keeps edge punctuation apart from words
    init_state: str = "mean"  # rnn decoder's first state: "mean" memory or "final" states
    more_minutes: float | None = None  # then trained this much more (--continue-training)
    version: int | None = None  # the bundle's version; None = the command's --version


DEFAULT_RECIPES: tuple[Recipe, ...] = (
    Recipe(task="translate", languages="en-fr", minutes=14.0, max_eval_examples=None),
    Recipe(
        task="translate", languages="en-de", minutes=30.0, max_eval_examples=None, max_steps=4311
    ),
    Recipe(task="translate", languages="en-it", minutes=14.0, max_eval_examples=None),
    Recipe(
        task="answer",
        languages=None,
        minutes=25.0,
        max_eval_examples=3000,
        copy_attention=True,
        split_punctuation=True,
        init_state="final",
        more_minutes=60.0,
        version=3,  # answer-en/1 (GRU, no copy, 160-token contexts) was the earlier default
    ),
    Recipe(task="summarize", languages=None, minutes=14.0, max_eval_examples=None),
)


def build_defaults(
    data_dir: Path,
    repo: Path,
    *,
    version: int,
    threads: int,
    overwrite: bool,
    minutes_scale: float = 1.0,
) -> list[Path]:
    """Build every default bundle, preparing the data first when it is missing."""
    from model_export.build import build_bundle
    from model_export.data import prepare

    if not (data_dir / "manifest.json").is_file():
        print(f"no prepared data in {data_dir}: fetching Debian's lists and preparing it")
        prepare(data_dir, None)
    built = []
    for recipe in DEFAULT_RECIPES:
        runs = [(recipe.minutes, False)]
        if recipe.more_minutes is not None:
            runs.append((recipe.more_minutes, True))
        steps = None if recipe.max_steps is None else {"max_steps": recipe.max_steps}
        for index, (minutes, continuing) in enumerate(runs):
            result = build_bundle(
                task=recipe.task,
                languages=recipe.languages,
                data_dir=data_dir,
                repo=repo,
                version=recipe.version or version,
                minutes=minutes * minutes_scale,
                threads=threads,
                max_eval_examples=recipe.max_eval_examples,
                model_overrides={
                    "copy_attention": recipe.copy_attention or None,
                    "init_state": recipe.init_state,
                },
                train_overrides=steps,
                split_punctuation=recipe.split_punctuation,
                overwrite=overwrite or index > 0,
                continue_training=continuing,
                progress=False,
            )
        built.append(result.bundle_dir)
    return built
