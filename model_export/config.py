"""Model and training configuration: one pydantic object each, validated at construction."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """Selects one member of the RNN attention seq2seq family and sizes it."""

    cell: Literal["gru", "lstm"] = "gru"  # recurrent cell of encoder and decoder
    # soft: weights over the source sum to 1; hard: all weight on the argmax source position
    # (trained with a straight-through estimator: one-hot forward, softmax gradient)
    attention_kind: Literal["soft", "hard"] = "soft"
    attention_scope: Literal["global"] = "global"  # global: attend over every source position
    attention_score: Literal["dot", "general", "additive", "cosine"] = "general"  # score(h, m)
    vocab_size: int = Field(default=4000, ge=8)  # shared source/target vocabulary, incl. specials
    embedding_size: int = Field(default=128, ge=1)  # E: token embedding width (shared, tied)
    hidden_size: int = Field(default=256, ge=2)  # H: decoder state and memory width
    max_source_length: int = Field(default=128, ge=2)  # source tokens incl. EOS
    max_target_length: int = Field(default=64, ge=2)  # target tokens incl. EOS
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)  # on embeddings and attentional output
    pad_id: int = Field(default=0, ge=0)  # padding token id (never predicted)
    bos_id: int = Field(default=1, ge=0)  # first decoder input
    eos_id: int = Field(default=2, ge=0)  # end of sequence

    @model_validator(mode="after")
    def _supported(self) -> ModelConfig:
        if self.hidden_size % 2:
            raise ValueError(
                f"hidden_size must be even (two encoder directions), not {self.hidden_size}"
            )
        return self


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
