"""Model and training configuration: one pydantic object each, validated at construction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


AttentionKind = Literal["soft", "hard", "none"]
AttentionScope = Literal["global", "local"]
AttentionScore = Literal["dot", "general", "additive", "cosine", "scaled_dot"]


class ModelConfig(_Strict):
    """Selects one member of the attention seq2seq family and sizes it.

    rnn: a bidirectional GRU/LSTM encoder and a GRU/LSTM decoder with Luong attention (input
    feeding), any kind x scope x score below. transformer: a pre-norm Transformer
    encoder-decoder; its cross-attention is soft, global and scaled dot-product by definition.
    """

    architecture: str = "rnn"  # a family of FAMILY_RULES (model_export.families builds it)
    cell: Literal["gru", "lstm"] | None = None  # rnn only; None means gru
    # soft: weights over the source sum to 1; hard: all weight on the argmax source position
    # (trained with a straight-through estimator: one-hot forward, softmax gradient);
    # none: no attention at all (the decoder sees the source only through its initial state),
    # the ablation baseline for "does attention help?"
    attention_kind: AttentionKind = "soft"
    # global: every source position; local: Luong's local-p, a predicted centre p_t in the
    # source with a Gaussian prior (sigma = window / 2), positions |s - p_t| > window masked
    attention_scope: AttentionScope = "global"
    attention_window: int | None = Field(default=None, ge=1)  # D, local scope only
    # score(h, m); None picks the architecture's own: general (rnn), scaled_dot (transformer)
    attention_score: AttentionScore | None = None
    # copy attention (pointer-generator, See et al. 2017): the decoder's output distribution
    # mixes the vocabulary softmax with this step's attention scattered onto the source token
    # ids, weighted by a learned gate p_gen; rnn with attention only
    copy_attention: bool = False
    # rnn: the decoder's initial state from the mean of the encoder memory, or from the
    # encoder's final states (forward RNN at the last token, backward RNN at the first, as
    # Bahdanau et al. and See et al. do): the backward RNN reads the source's start last,
    # so an answer model's first query carries the question rather than an average
    init_state: Literal["mean", "final"] = "mean"
    vocab_size: int = Field(default=4000, ge=8)  # shared source/target vocabulary, incl. specials
    embedding_size: int = Field(default=128, ge=1)  # E: token embedding width (shared, tied)
    hidden_size: int = Field(default=256, ge=2)  # H: decoder state / d_model and memory width
    layers: int = Field(default=2, ge=1)  # transformer: encoder and decoder layers each
    heads: int = Field(default=4, ge=1)  # transformer: attention heads; divides hidden_size
    ffn_size: int = Field(default=512, ge=1)  # transformer: feed-forward inner width
    max_source_length: int = Field(default=128, ge=2)  # source tokens incl. EOS
    max_target_length: int = Field(default=64, ge=2)  # target tokens incl. EOS
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)  # on embeddings and attentional output
    pad_id: int = Field(default=0, ge=0)  # padding token id (never predicted)
    bos_id: int = Field(default=1, ge=0)  # first decoder input
    eos_id: int = Field(default=2, ge=0)  # end of sequence

    @model_validator(mode="before")
    @classmethod
    def _architecture_defaults(cls, data: Any) -> Any:
        """Fill the fields whose default depends on the family."""
        if not isinstance(data, dict):
            return data
        family = FAMILY_RULES.get(str(data.get("architecture", "rnn")))
        data = dict(data)
        for name, value in (family.defaults if family else {}).items():
            if data.get(name) is None:
                data[name] = value
        return data

    @model_validator(mode="after")
    def _possible(self) -> ModelConfig:
        problems = impossible_combinations(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def impossible_combinations(c: ModelConfig) -> list[str]:
    """Every reason this combination cannot be built, in words a user can act on."""
    problems = []
    if c.attention_scope == "local" and c.attention_window is None:
        problems.append("attention_scope 'local' needs attention_window (half-width D >= 1)")
    if c.attention_scope == "global" and c.attention_window is not None:
        problems.append("attention_window is only valid with attention_scope 'local'")
    if c.attention_kind == "none" and c.attention_scope != "global":
        problems.append("attention_kind 'none' has no scope: drop attention_scope/window")
    family = FAMILY_RULES.get(c.architecture)
    if family is None:
        problems.append(
            f"unknown architecture {c.architecture!r}; one of {', '.join(FAMILY_RULES)}"
        )
    else:
        problems.extend(family.problems(c))
    return problems


@dataclass(frozen=True)
class FamilyRules:
    """What a trained family accepts of a ModelConfig."""

    defaults: Mapping[str, object]  # config fields whose default depends on the family
    problems: Callable[[ModelConfig], list[str]]  # why a config cannot build it, in words


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


FAMILY_RULES: dict[str, FamilyRules] = {
    "rnn": FamilyRules(
        defaults={"cell": "gru", "attention_score": "general"}, problems=_rnn_problems
    ),
    "transformer": FamilyRules(
        defaults={"attention_score": "scaled_dot"}, problems=_transformer_problems
    ),
}


class TrainConfig(_Strict):
    """How one model is fitted; every number has its unit in the comment."""

    seed: int = 1234  # seeds torch, python and the batch shuffle
    max_steps: int = Field(default=100_000, ge=1)  # optimizer steps at most
    max_epochs: int = Field(default=50, ge=1)  # passes over the training set at most
    minutes: float = Field(default=10.0, gt=0)  # wall-clock budget for the training loop, minutes
    batch_tokens: int | None = Field(default=3000, ge=1)  # batch by padded target+source tokens
    batch_sentences: int = Field(default=64, ge=1)  # sentences per batch at most
    lr: float = Field(default=2e-3, gt=0)  # AdamW learning rate
    weight_decay: float = Field(default=0.01, ge=0)  # AdamW weight decay
    clip_norm: float = Field(default=1.0, gt=0)  # gradient clipping, max global L2 norm
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)  # 0 disables
    eval_every: int = Field(default=200, ge=1)  # steps between validation losses
    max_valid_examples: int = Field(default=1000, ge=1)  # validation subset size
    patience: int = Field(default=5, ge=1)  # validations without improvement before stopping
    threads: int = Field(default=2, ge=1)  # torch.set_num_threads
    checkpoint_dir: Path = Path("runs/checkpoints")  # best.pt and model_config.json go here
    progress: bool = True  # tqdm progress bar
