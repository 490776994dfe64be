"""The model families model_export trains: one entry each, from which the config's choices,
the CLI's `--architecture` choices and `build_model` all come.

Torch-free: `config.py` reads it to validate a config, so an entry names its model class by
import path (vLLM's model registry does the same), imported only when a model is built. The
family modules import `config` and `base`, never this registry, so there is no import cycle.
Every name is one of the bundle contract's families (service/families.py); an imported
family (a converted checkpoint, not built from a ModelConfig) has no entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model_export.base import EncoderDecoder
    from model_export.config import ModelConfig


@dataclass(frozen=True)
class ModelFamily:
    name: str  # the manifest's `architecture`, one of service.families.FAMILIES
    model: str  # "module:Class" of its EncoderDecoder, built as Class(config)
    defaults: Mapping[str, object]  # config fields whose default depends on the family
    problems: Callable[[ModelConfig], list[str]]  # why a config cannot build it, in words

    def model_class(self) -> type[EncoderDecoder]:
        module, _, name = self.model.partition(":")
        return getattr(importlib.import_module(module), name)


def _rnn_problems(c: ModelConfig) -> list[str]:
    problems = []
    if c.hidden_size % 2:
        problems.append(f"hidden_size must be even (two encoder directions), not {c.hidden_size}")
    if c.attention_score == "scaled_dot":
        problems.append("score 'scaled_dot' is the transformer's; an rnn uses dot or general")
    if c.copy_attention and c.attention_kind == "none":
        problems.append(
            "copy_attention needs attention to copy with: attention_kind 'none' has none"
        )
    return problems


def _transformer_problems(c: ModelConfig) -> list[str]:
    problems = []
    if c.cell is not None:
        problems.append(f"cell {c.cell!r} is for architecture 'rnn', not 'transformer'")
    if (c.attention_kind, c.attention_scope, c.attention_score) != (
        "soft",
        "global",
        "scaled_dot",
    ):
        problems.append(
            "a transformer's cross-attention is soft, global and scaled_dot; got "
            f"kind {c.attention_kind!r}, scope {c.attention_scope!r}, "
            f"score {c.attention_score!r} (hard/local/none variants are rnn only)"
        )
    if c.hidden_size % c.heads:
        problems.append(f"hidden_size {c.hidden_size} is not divisible by heads {c.heads}")
    if c.init_state != "mean":
        problems.append(f"init_state {c.init_state!r} is for architecture 'rnn'")
    if c.copy_attention:
        problems.append("copy attention is an rnn variant, not available for 'transformer'")
    return problems


FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily(
            name="rnn",
            model="model_export.model:Seq2Seq",
            defaults={"cell": "gru", "attention_score": "general"},
            problems=_rnn_problems,
        ),
        ModelFamily(
            name="transformer",
            model="model_export.transformer:TransformerSeq2Seq",
            defaults={"attention_score": "scaled_dot"},
            problems=_transformer_problems,
        ),
    )
}


def build_model(config: ModelConfig) -> EncoderDecoder:
    """The family member `config` names, freshly initialised."""
    return FAMILIES[config.architecture].model_class()(config)
