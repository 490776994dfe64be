"""The Transformer member of the family: a pre-norm encoder-decoder (self-attention) whose
decoder is ONE step over two key/value caches.

Training runs the decoder stack in parallel over the target (causal mask); export traces
`TransformerDecoderStep.forward`, which runs the same layers for one position per row.
Both paths share every module.

Decoder state carried from step to step (names and axes as in the bundle manifest), per
decoder layer i, split into heads (d = H / heads) as attention reads them:
  cross_keys_i, cross_values_i (B, heads, S, d)  batch axis 0, source axis 2: the layer's
      cross-attention keys/values of `memory`, computed ONCE by the encoder graph and
      read by every step unchanged (`constant`: the decoder graph does not output them)
  self_keys_i, self_values_i   (B, heads, T, d)  batch axis 0, target axis 2: the layer's
      self-attention keys/values so far, newest slot LAST; T = 0 from the encoder
  position (B,) int64                             batch axis 0: the next position (0 first)
One tensor per layer and the head layout are measured choices: slicing a layers axis and
splitting heads at every step cost more than the attention's matrix products (docs/models.md).

A step appends this step's keys/values at the end of the self-attention cache (T -> T + 1)
and row b attends to its last position[b] + 1 slots only. That is what lets the serving
engine batch rows at DIFFERENT positions (continuous batching) with nothing but the axes:
a request that joins a running batch has a shorter cache, which the engine pads at the
START with zeros (never attended: they lie before the row's first real slot), and leading
slots no live row uses are trimmed; the source axis is padded at the end and trimmed like
`memory`, and its padding is masked by `src_mask`. The cache grows with the longest live
row instead of being a fixed block, and no step recomputes the cross-attention keys and
values (O(layers * S * H^2) per step before they were cached).

The step reads the cached keys, not `memory`; its graph still takes `memory`, as the
contract says (export.py keeps every declared input).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_export.base import EncoderDecoder, shared_embedding, source_mask
from model_export.config import ModelConfig, impossible_combinations
from service.bundle import StateTensor


def transformer_states(layers: int) -> tuple[StateTensor, ...]:
    """The decoder's states in graph order: every layer's cross-attention cache (source
    axis), every layer's self-attention cache (target axis), then the position."""
    cross = [
        StateTensor(name=f"cross_{kind}_{i}", batch_axis=0, source_axis=2, constant=True)
        for i in range(layers)
        for kind in ("keys", "values")
    ]
    cache = [
        StateTensor(name=f"self_{kind}_{i}", batch_axis=0, target_axis=2)
        for i in range(layers)
        for kind in ("keys", "values")
    ]
    return (*cross, *cache, StateTensor(name="position", batch_axis=0))


def sinusoid(positions: Tensor, width: int) -> Tensor:
    """Vaswani's sinusoidal encoding: positions (...) int64 -> (..., width) float32.

    Computed from the positions themselves (no table), so any position exports and runs.
    """
    half = (width + 1) // 2
    scale = -math.log(10_000.0) / max(half, 1)
    inv_freq = torch.exp(torch.arange(half, device=positions.device, dtype=torch.float32) * scale)
    angles = positions.to(torch.float32).unsqueeze(-1) * inv_freq  # (..., half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[..., :width]  # (..., width)


def masked_softmax(scores: Tensor, allowed: Tensor) -> Tensor:
    """Softmax over the last axis where `allowed`; never -inf (DESIGN §11): a fully masked
    row stays finite (uniform) instead of NaN."""
    lowest = torch.finfo(scores.dtype).min
    return torch.softmax(scores.masked_fill(~allowed, lowest), dim=-1)


class Embedder(nn.Module):
    """Shared token table (E) -> d_model (H), scaled by sqrt(H), plus sinusoidal positions."""

    def __init__(self, *, config: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding
        self.hidden_size = config.hidden_size
        self.to_model = nn.Linear(config.embedding_size, config.hidden_size, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, ids: Tensor, positions: Tensor) -> Tensor:
        """ids (...) int64, positions (...) int64 (same shape) -> (..., H)."""
        x = self.to_model(self.embedding(ids)) * math.sqrt(self.hidden_size)  # (..., H)
        return self.dropout(x + sinusoid(positions, self.hidden_size).to(x.dtype))


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with `heads` heads; keys/values projected separately so
    that a decoder step can cache them."""

    def __init__(self, *, hidden_size: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_size = hidden_size // heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)

    def _split(self, x: Tensor) -> Tensor:
        """(B, T, H) -> (B, heads, T, H / heads)."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.heads, self.head_size).transpose(1, 2)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, H) -> keys, values (B, heads, T, d) each, split as `attend` reads them."""
        return self._split(self.key(x)), self._split(self.value(x))

    def attend(
        self, x: Tensor, keys: Tensor, values: Tensor, allowed: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x (B, Tq, H) queries over keys/values (B, heads, Tk, d); allowed (B, Tq, Tk) bool
        (or broadcastable) -> output (B, Tq, H), weights (B, heads, Tq, Tk)."""
        q = self._split(self.query(x))  # (B, h, Tq, d)
        scores = torch.matmul(q, keys.transpose(2, 3)) / math.sqrt(self.head_size)  # (B,h,Tq,Tk)
        weights = masked_softmax(scores, allowed.unsqueeze(1))  # (B, h, Tq, Tk)
        mixed = torch.matmul(weights, values).transpose(1, 2)  # (B, Tq, h, d)
        batch, length = mixed.shape[0], mixed.shape[1]
        return self.out(mixed.reshape(batch, length, -1)), weights  # (B, Tq, H)


class FeedForward(nn.Module):
    def __init__(self, *, hidden_size: int, ffn_size: int, dropout: float) -> None:
        super().__init__()
        self.inner = nn.Linear(hidden_size, ffn_size)
        self.outer = nn.Linear(ffn_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(..., H) -> (..., H)"""
        return self.outer(self.dropout(F.gelu(self.inner(x))))


class EncoderLayer(nn.Module):
    """Pre-norm: x + SelfAttention(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, *, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.norm_attention = nn.LayerNorm(hidden)
        self.attention = MultiHeadAttention(hidden_size=hidden, heads=config.heads)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = FeedForward(hidden_size=hidden, ffn_size=config.ffn_size, dropout=config.dropout)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        """x (B, S, H), allowed (B, 1, S) real keys -> (B, S, H)."""
        h = self.norm_attention(x)
        keys, values = self.attention.keys_values(h)  # (B, h, S, d) each
        attended, _ = self.attention.attend(h, keys, values, allowed)  # (B, S, H)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class TransformerEncoder(nn.Module):
    """Embeddings + positions -> encoder layers -> final LayerNorm -> memory."""

    def __init__(self, *, config: ModelConfig, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder
        self.layers = nn.ModuleList(EncoderLayer(config=config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, src_ids: Tensor, src_lengths: Tensor) -> Tensor:
        """src_ids (B, S) int64, src_lengths (B,) int64 -> memory (B, S, H), padding 0."""
        mask = source_mask(src_ids, src_lengths)  # (B, S)
        positions = torch.arange(src_ids.shape[1], device=src_ids.device)  # (S,)
        x = self.embedder(src_ids, positions.unsqueeze(0).expand_as(src_ids))  # (B, S, H)
        allowed = mask.unsqueeze(1)  # (B, 1, S): every query sees the real keys only
        for layer in self.layers:
            x = layer(x, allowed)
        return self.norm(x) * mask.unsqueeze(2).to(x.dtype)  # (B, S, H)


class DecoderLayer(nn.Module):
    """Pre-norm: causal self-attention, cross-attention over memory, FFN; each residual."""

    def __init__(self, *, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.norm_self = nn.LayerNorm(hidden)
        self.self_attention = MultiHeadAttention(hidden_size=hidden, heads=config.heads)
        self.norm_cross = nn.LayerNorm(hidden)
        self.cross_attention = MultiHeadAttention(hidden_size=hidden, heads=config.heads)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = FeedForward(hidden_size=hidden, ffn_size=config.ffn_size, dropout=config.dropout)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: Tensor,
        src_allowed: Tensor,
        self_allowed: Tensor,
        cross: tuple[Tensor, Tensor],
        cache: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """x (B, T, H), src_allowed (B, 1, S), self_allowed (B, T, Tk), cross: the memory's
        keys and values for this layer (B, h, S, d) each; cache None (parallel pass: the
        keys are x's own, Tk = T) or the past keys and values (B, h, Tc, d) each (a step,
        T = 1: this step's are appended, Tk = Tc + 1) -> x (B, T, H), cross weights
        (B, h, T, S), keys and values (B, h, Tk, d)."""
        h = self.norm_self(x)
        keys, values = self.self_attention.keys_values(h)  # (B, h, T, d) each
        if cache is not None:
            keys = torch.cat([cache[0], keys], dim=2)  # (B, h, Tc + 1, d): newest last
            values = torch.cat([cache[1], values], dim=2)  # (B, h, Tc + 1, d)
        attended, _ = self.self_attention.attend(h, keys, values, self_allowed)  # (B, T, H)
        x = x + self.dropout(attended)
        h = self.norm_cross(x)
        crossed, weights = self.cross_attention.attend(h, cross[0], cross[1], src_allowed)
        x = x + self.dropout(crossed)
        x = x + self.dropout(self.ffn(self.norm_ffn(x)))
        return x, weights, keys, values


class TransformerDecoderStep(nn.Module):
    """The decoder stack; `forward` is ONE step with the key/value cache (what is exported),
    `parallel` is the teacher-forced pass over a whole target (what is trained)."""

    def __init__(self, *, config: ModelConfig, embedder: Embedder) -> None:
        super().__init__()
        self.config = config
        self.embedder = embedder
        self.layers = nn.ModuleList(DecoderLayer(config=config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.to_embedding = nn.Linear(config.hidden_size, config.embedding_size, bias=False)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def project(self, x: Tensor) -> Tensor:
        """Last layer's output (..., H) -> log_probs (..., V) float32, tied to the shared
        embedding as in the rnn family."""
        projected = self.to_embedding(self.dropout(self.norm(x)))  # (..., E)
        logits = F.linear(projected, self.embedder.embedding.weight, self.output_bias)  # (..., V)
        return torch.log_softmax(logits.float(), dim=-1)

    def cross_cache(self, memory: Tensor) -> list[Tensor]:
        """memory (B, S, H) -> every layer's cross-attention keys and values, (B, h, S, d)
        each, in state order: what the encoder graph hands to every step."""
        return [t for layer in self.layers for t in layer.cross_attention.keys_values(memory)]

    def forward(
        self, prev_ids: Tensor, memory: Tensor, src_mask: Tensor, *states: Tensor
    ) -> tuple[Tensor, ...]:
        """prev_ids (B,), memory (B, S, H) (not read: its keys and values are cached),
        src_mask (B, S) bool, states in `transformer_states` order: cross keys/values
        (B, h, S, d) and self keys/values (B, h, Tc, d) per layer, position (B,) int64 ->
        log_probs (B, V), attention (B, S), then the same cross keys/values, the self
        keys/values grown to (B, h, Tc + 1, d), and position + 1."""
        layers = len(self.layers)
        cross, cache, position = states[: 2 * layers], states[2 * layers : -1], states[-1]
        past = cache[0].shape[2]  # Tc
        slots = torch.arange(past + 1, device=prev_ids.device)  # (Tc + 1,)
        first = past - position  # (B,): row b's oldest real slot
        self_allowed = (slots.unsqueeze(0) >= first.unsqueeze(1)).unsqueeze(1)  # (B, 1, Tc+1)
        src_allowed = src_mask.unsqueeze(1)  # (B, 1, S)
        x = self.embedder(prev_ids.unsqueeze(1), position.unsqueeze(1))  # (B, 1, H)
        grown: list[Tensor] = []
        weights = memory.new_zeros(())  # replaced by each layer; the last one is reported
        for i, layer in enumerate(self.layers):
            pair = (cross[2 * i], cross[2 * i + 1])
            x, weights, keys, values = layer(
                x, src_allowed, self_allowed, pair, (cache[2 * i], cache[2 * i + 1])
            )
            grown += [keys, values]  # (B, h, Tc + 1, d) each
        attention = weights.mean(dim=1).squeeze(1)  # (B, h, 1, S) -> (B, S)
        log_probs = self.project(x.squeeze(1))  # (B, V)
        return (log_probs, attention.float(), *cross, *grown, position + 1)

    def parallel(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) starting with BOS -> log_probs (B, T, V)."""
        length = tgt_in.shape[1]
        positions = torch.arange(length, device=tgt_in.device)  # (T,)
        x = self.embedder(tgt_in, positions.unsqueeze(0).expand_as(tgt_in))  # (B, T, H)
        causal = positions.unsqueeze(1) >= positions.unsqueeze(0)  # (T, T): key <= query
        self_allowed = causal.unsqueeze(0)  # (1, T, T)
        src_allowed = src_mask.unsqueeze(1)  # (B, 1, S)
        cross = self.cross_cache(memory)  # (B, h, S, d) each
        for i, layer in enumerate(self.layers):
            x, _, _, _ = layer(x, src_allowed, self_allowed, (cross[2 * i], cross[2 * i + 1]))
        return self.project(x)  # (B, T, V)


class TransformerSeq2Seq(EncoderDecoder):
    """Pre-norm Transformer encoder + one-step decoder sharing one embedding table."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        problems = impossible_combinations(config)
        if config.architecture != "transformer":
            problems.insert(0, f"architecture is {config.architecture!r}; use families.build_model")
        if problems:
            raise ValueError("TransformerSeq2Seq cannot build this config: " + "; ".join(problems))
        self.config = config
        self.embedding = shared_embedding(config)
        self.embedder = Embedder(config=config, embedding=self.embedding)
        self.encoder = TransformerEncoder(config=config, embedder=self.embedder)
        self.decoder = TransformerDecoderStep(config=config, embedder=self.embedder)

    def forward(self, src_ids: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) starts with BOS -> log_probs (B, T, V)."""
        memory = self.encoder(src_ids, src_lengths)  # (B, S, H)
        return self.decoder.parallel(tgt_in, memory, source_mask(src_ids, src_lengths))

    def encode(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        """The encoder graph: memory (B, S, H), then the initial states: every layer's
        cross-attention keys/values (B, h, S, d), empty self-attention caches (B, h, 0, d)
        and position 0 (B,)."""
        memory = self.encoder(src_ids, src_lengths)  # (B, S, H)
        cross = self.decoder.cross_cache(memory)
        empty = cross[0][:, :, :0]  # (B, h, 0, d)
        position = src_lengths * 0  # (B,) int64 zeros, batch taken from the input
        return memory, *cross, *[empty] * len(cross), position

    def export_problems(self) -> list[str]:
        """On top of the base checks: the config must still be a valid transformer (one made
        with model_construct skips validation), and the stacks must match the cache layout
        (layers) that the manifest and the engine will be told about."""
        cfg = self.config
        problems = super().export_problems() + impossible_combinations(cfg)
        for name, stack in (("encoder", self.encoder.layers), ("decoder", self.decoder.layers)):
            if len(stack) != cfg.layers:
                problems.append(f"the {name} has {len(stack)} layers but the config {cfg.layers}")
        return problems

    def state_specs(self) -> tuple[StateTensor, ...]:
        return transformer_states(self.config.layers)

    def example_states(self, batch: int, source_length: int) -> tuple[Tensor, ...]:
        """Filled caches (source_length and batch + 2 past slots) and a different position
        per row, for tracing the export."""
        cfg = self.config
        heads, past = cfg.heads, batch + 2
        head_size = cfg.hidden_size // heads
        cross = [torch.randn(batch, heads, source_length, head_size) for _ in range(2 * cfg.layers)]
        cache = [torch.randn(batch, heads, past, head_size) for _ in range(2 * cfg.layers)]
        position = torch.arange(batch, dtype=torch.long) * 2 % (past + 1)  # (B,) <= past
        return (*cross, *cache, position)
