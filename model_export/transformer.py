"""The Transformer member of the family: a pre-norm encoder-decoder (self-attention) whose
decoder is ONE step with a fixed-size self-attention key/value cache.

Training runs the decoder stack in parallel over the target (causal mask); export traces
`TransformerDecoderStep.forward`, which runs the same layers for one position per row and
writes that position's keys and values into the cache. Both paths share every module.

Decoder state carried from step to step (names as in the bundle manifest, batch axis 0):
  self_keys   (B, layers, max_target_length, H): each layer's self-attention keys so far
  self_values (B, layers, max_target_length, H): each layer's self-attention values so far
  position    (B,) int64: the next position to decode (0 at the first step)

The cache is fixed in size so that the serving engine can treat it like any other state:
it concatenates rows when requests join and gathers rows when requests leave or beams
reorder, and rows of one batch sit at DIFFERENT positions (continuous batching). A step
writes row b's new key/value at slot position[b] (a one-hot blend, which exports as a plain
Where) and attends over slots <= position[b]; slots beyond are masked, so whatever they hold
never reaches the output. Decoding must stop after max_target_length steps (the engine caps
output tokens at the manifest's max_target_length; the cache has no slot beyond it).

Known cost: cross-attention keys and values are recomputed from `memory` at every step
(O(layers * S * H^2) per step); caching them would need a state whose length follows the
source, which the engine pads and trims on its own, so they are not cached.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_export.config import ModelConfig, impossible_combinations
from model_export.model import EncoderDecoder, shared_embedding, source_mask

TRANSFORMER_STATES: tuple[str, ...] = ("self_keys", "self_values", "position")


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
        """x (B, T, H) -> keys (B, T, H), values (B, T, H)."""
        return self.key(x), self.value(x)

    def attend(
        self, x: Tensor, keys: Tensor, values: Tensor, allowed: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x (B, Tq, H) queries over keys/values (B, Tk, H); allowed (B, Tq, Tk) bool
        (or broadcastable) -> output (B, Tq, H), weights (B, heads, Tq, Tk)."""
        q = self._split(self.query(x))  # (B, h, Tq, d)
        k = self._split(keys)  # (B, h, Tk, d)
        v = self._split(values)  # (B, h, Tk, d)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_size)  # (B,h,Tq,Tk)
        weights = masked_softmax(scores, allowed.unsqueeze(1))  # (B, h, Tq, Tk)
        mixed = torch.matmul(weights, v).transpose(1, 2)  # (B, Tq, h, d)
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
        keys, values = self.attention.keys_values(h)  # (B, S, H) each
        attended, _ = self.attention.attend(h, keys, values, allowed)  # (B, S, H)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class TransformerEncoder(nn.Module):
    """Embeddings + positions -> encoder layers -> final LayerNorm -> memory; then the
    decoder's initial states (an empty cache at position 0)."""

    def __init__(self, *, config: ModelConfig, embedder: Embedder) -> None:
        super().__init__()
        self.config = config
        self.embedder = embedder
        self.layers = nn.ModuleList(EncoderLayer(config=config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        """src_ids (B, S) int64, src_lengths (B,) int64 -> memory (B, S, H), then
        self_keys, self_values (B, layers, T_max, H) zeros and position (B,) zeros."""
        mask = source_mask(src_ids, src_lengths)  # (B, S)
        positions = torch.arange(src_ids.shape[1], device=src_ids.device)  # (S,)
        x = self.embedder(src_ids, positions.unsqueeze(0).expand_as(src_ids))  # (B, S, H)
        allowed = mask.unsqueeze(1)  # (B, 1, S): every query sees the real keys only
        for layer in self.layers:
            x = layer(x, allowed)
        memory = self.norm(x) * mask.unsqueeze(2).to(x.dtype)  # (B, S, H), padding exactly 0
        cfg = self.config
        position = src_lengths * 0  # (B,) int64 zeros, batch taken from the input
        # Expanding the zeros keeps the cache's non-batch axes static in the exported graph
        # (new_zeros with the traced batch size, or reshape(-1, ...), would leave them unnamed).
        cache = position.to(memory.dtype)[:, None, None, None].expand(
            -1, cfg.layers, cfg.max_target_length, cfg.hidden_size
        )  # (B, layers, T_max, H) zeros
        return memory, cache, cache, position


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
        memory: Tensor,
        src_allowed: Tensor,
        self_allowed: Tensor,
        cache: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """x (B, T, H), memory (B, S, H), src_allowed (B, 1, S), self_allowed (B, T, Tk);
        cache None (parallel pass: keys are x's own, Tk = T) or (keys, values (B, Tc, H),
        write (B, Tc) bool one-hot: the slot this step fills; Tk = Tc) ->
        x (B, T, H), cross weights (B, heads, T, S), keys and values (B, Tk, H)."""
        h = self.norm_self(x)
        keys, values = self.self_attention.keys_values(h)  # (B, T, H) each
        if cache is not None:
            cached_keys, cached_values, write = cache
            slot = write.unsqueeze(2)  # (B, Tc, 1)
            keys = torch.where(slot, keys, cached_keys)  # (B, Tc, H); T == 1 broadcasts
            values = torch.where(slot, values, cached_values)  # (B, Tc, H)
        attended, _ = self.self_attention.attend(h, keys, values, self_allowed)  # (B, T, H)
        x = x + self.dropout(attended)
        h = self.norm_cross(x)
        memory_keys, memory_values = self.cross_attention.keys_values(memory)  # (B, S, H)
        crossed, weights = self.cross_attention.attend(h, memory_keys, memory_values, src_allowed)
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

    def forward(
        self,
        prev_ids: Tensor,
        memory: Tensor,
        src_mask: Tensor,
        self_keys: Tensor,
        self_values: Tensor,
        position: Tensor,
    ) -> tuple[Tensor, ...]:
        """prev_ids (B,), memory (B, S, H), src_mask (B, S) bool, self_keys/self_values
        (B, layers, Tc, H), position (B,) int64 -> log_probs (B, V), attention (B, S), then
        the new self_keys, self_values and position + 1."""
        slots = torch.arange(self_keys.shape[2], device=prev_ids.device).unsqueeze(0)  # (1, Tc)
        row_position = position.unsqueeze(1)  # (B, 1)
        write = slots == row_position  # (B, Tc): the slot this step fills
        self_allowed = (slots <= row_position).unsqueeze(1)  # (B, 1, Tc): itself and before
        src_allowed = src_mask.unsqueeze(1)  # (B, 1, S)
        x = self.embedder(prev_ids.unsqueeze(1), row_position)  # (B, 1, H)
        new_keys, new_values = [], []
        weights = memory.new_zeros(())  # replaced by each layer; the last one is reported
        for index, layer in enumerate(self.layers):
            cache = (self_keys[:, index], self_values[:, index], write)  # (B, Tc, H) x2
            x, weights, keys, values = layer(x, memory, src_allowed, self_allowed, cache)
            new_keys.append(keys)
            new_values.append(values)
        attention = weights.mean(dim=1).squeeze(1)  # (B, heads, 1, S) -> (B, S)
        log_probs = self.project(x.squeeze(1))  # (B, V)
        return (
            log_probs,
            attention.float(),
            torch.stack(new_keys, dim=1),  # (B, layers, Tc, H)
            torch.stack(new_values, dim=1),  # (B, layers, Tc, H)
            position + 1,
        )

    def parallel(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) starting with BOS -> log_probs (B, T, V)."""
        length = tgt_in.shape[1]
        positions = torch.arange(length, device=tgt_in.device)  # (T,)
        x = self.embedder(tgt_in, positions.unsqueeze(0).expand_as(tgt_in))  # (B, T, H)
        causal = positions.unsqueeze(1) >= positions.unsqueeze(0)  # (T, T): key <= query
        self_allowed = causal.unsqueeze(0)  # (1, T, T)
        src_allowed = src_mask.unsqueeze(1)  # (B, 1, S)
        for layer in self.layers:
            x, _, _, _ = layer(x, memory, src_allowed, self_allowed)
        return self.project(x)  # (B, T, V)


class TransformerSeq2Seq(EncoderDecoder):
    """Pre-norm Transformer encoder + one-step decoder sharing one embedding table."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        problems = impossible_combinations(config)
        if config.architecture != "transformer":
            problems.insert(0, f"architecture is {config.architecture!r}; use build_model")
        if problems:
            raise ValueError("TransformerSeq2Seq cannot build this config: " + "; ".join(problems))
        self.config = config
        self.embedding = shared_embedding(config)
        self.embedder = Embedder(config=config, embedding=self.embedding)
        self.encoder = TransformerEncoder(config=config, embedder=self.embedder)
        self.decoder = TransformerDecoderStep(config=config, embedder=self.embedder)

    def forward(self, src_ids: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) starts with BOS -> log_probs (B, T, V)."""
        length = tgt_in.shape[1]
        if length > self.config.max_target_length:
            raise ValueError(
                f"target of {length} tokens is longer than max_target_length "
                f"{self.config.max_target_length} (the decoder cache's size)"
            )
        memory, *_ = self.encoder(src_ids, src_lengths)
        return self.decoder.parallel(tgt_in, memory, source_mask(src_ids, src_lengths))

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

    def example_states(self, batch: int, source_length: int) -> tuple[Tensor, ...]:
        """A filled cache and distinct positions per row, for tracing the export."""
        cfg = self.config
        shape = (batch, cfg.layers, cfg.max_target_length, cfg.hidden_size)
        position = torch.arange(batch, dtype=torch.long) * 2 % cfg.max_target_length  # (B,)
        return torch.randn(shape), torch.randn(shape), position
