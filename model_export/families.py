"""The model families model_export trains: the module and class that builds each one, from
which the CLI's `--architecture` choices and `build_model` come.

Torch-free: an entry names its model class by import path (vLLM's model registry does the
same), imported only when a model is built. Which configs a family accepts, and its config
defaults, are the config's own rules (`config.FAMILY_RULES`); every name here has one, and
every name is one of the bundle contract's families (service/families.py). An imported
family (a converted checkpoint, not built from a ModelConfig) has no entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_export.config import FAMILY_RULES, ModelConfig

if TYPE_CHECKING:
    from model_export.base import EncoderDecoder


@dataclass(frozen=True)
class ModelFamily:
    name: str  # the manifest's `architecture`, one of service.families.FAMILIES
    model: str  # "module:Class" of its EncoderDecoder, built as Class(config)

    def model_class(self) -> type[EncoderDecoder]:
        module, _, name = self.model.partition(":")
        return getattr(importlib.import_module(module), name)


FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily(name="rnn", model="model_export.model:Seq2Seq"),
        ModelFamily(name="transformer", model="model_export.transformer:TransformerSeq2Seq"),
    )
}
assert set(FAMILIES) == set(FAMILY_RULES), "every trained family needs its config rules"


def build_model(config: ModelConfig) -> EncoderDecoder:
    """The family member `config` names, freshly initialised."""
    return FAMILIES[config.architecture].model_class()(config)
