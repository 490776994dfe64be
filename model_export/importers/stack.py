"""Step-wise encoder and decoder over the modules of a Hugging Face BART-family model.

Marian, BART and mBART share one layer layout (`self_attn`, `encoder_attn`, `fc1`/`fc2`,
`activation_fn` and three LayerNorms per decoder layer); they differ in their embeddings
(given here as modules), in where the LayerNorms sit (post-norm; mBART pre-norm with a
final LayerNorm per stack) and in the output head. These modules call the checkpoint's own
submodules, so the exported graphs hold exactly its weights.

Decoder state (bundle schema 2), per decoder layer `l`, batch axis 0:
  self_keys_l, self_values_l   (B, heads, T, d)  target axis 2: one slot per step, newest
                               last; rows that joined later are padded at the START
  cross_keys_l, cross_values_l (B, heads, S, d)  source axis 2: computed once by the encoder,
                               constant (the step reads them; the graph does not output them)
  position                     (B,) int64        tokens fed so far (0 at the first step)
A step attends over the last `position + 1` self-attention slots of its row only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POSITION = "position"


def layer_state_names(layer: int) -> tuple[str, str, str, str]:
    return (
        f"self_keys_{layer}",
        f"self_values_{layer}",
        f"cross_keys_{layer}",
        f"cross_values_{layer}",
    )


def state_specs(layers: int) -> list[dict[str, object]]:
    """The manifest's `states` for a decoder of `layers` layers, in graph order."""
    specs: list[dict[str, object]] = []
    for layer in range(layers):
        self_k, self_v, cross_k, cross_v = layer_state_names(layer)
        specs += [{"name": n, "batch_axis": 0, "target_axis": 2} for n in (self_k, self_v)]
        specs += [
            {"name": n, "batch_axis": 0, "source_axis": 2, "constant": True}
            for n in (cross_k, cross_v)
        ]
    return [*specs, {"name": POSITION, "batch_axis": 0}]


@dataclass(frozen=True)
class StackParts:
    """What the step modules need from one checkpoint (its own modules, not copies)."""

    embed_source: nn.Module  # (ids (B, S), positions (B, S)) -> (B, S, H)
    embed_target: nn.Module  # (ids (B, 1), positions (B, 1)) -> (B, 1, H)
    encoder_layers: nn.ModuleList
    decoder_layers: nn.ModuleList
    pre_norm: bool  # mBART: LayerNorm before each sublayer; Marian, BART: after
    encoder_norm: nn.Module | None  # mBART: a LayerNorm after the last encoder layer
    decoder_norm: nn.Module | None
    lm_head: nn.Module  # (..., H) -> (..., V)
    logits_bias: Tensor  # (V,) Marian's and BART's final_logits_bias
    suppressed_ids: tuple[int, ...]  # never generated (HF bad_words_ids / suppress_tokens)
    forced_bos_id: int | None  # the first generated token (HF forced_bos_token_id)


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, H) -> (B, heads, T, H / heads)."""
    batch, length, width = x.shape
    return x.reshape(batch, length, heads, width // heads).transpose(1, 2)


def _project_keys_values(attn: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """x (B, T, H) -> keys, values (B, heads, T, d) through the attention's projections."""
    heads = attn.num_heads
    return _split_heads(attn.k_proj(x), heads), _split_heads(attn.v_proj(x), heads)


def _attend(
    attn: nn.Module, x: Tensor, keys: Tensor, values: Tensor, allowed: Tensor
) -> tuple[Tensor, Tensor]:
    """Queries from x (B, Tq, H) over keys/values (B, h, Tk, d) where `allowed` (B, 1, Tk)
    -> output (B, Tq, H), weights (B, h, Tq, Tk). Scaled and masked as HF's eager attention
    (masked scores get the lowest finite value, never -inf)."""
    q = _split_heads(attn.q_proj(x), attn.num_heads)  # (B, h, Tq, d)
    scores = torch.matmul(q, keys.transpose(2, 3)) * attn.scaling  # (B, h, Tq, Tk)
    scores = scores.masked_fill(~allowed.unsqueeze(1), torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    mixed = torch.matmul(weights, values).transpose(1, 2)  # (B, Tq, h, d)
    batch, length = mixed.shape[0], mixed.shape[1]
    return attn.out_proj(mixed.reshape(batch, length, -1)), weights


def _before(x: Tensor, norm: nn.Module, pre_norm: bool) -> Tensor:
    """A sublayer's input: normalised first in a pre-norm layer."""
    return norm(x) if pre_norm else x


def _after(x: Tensor, norm: nn.Module, pre_norm: bool) -> Tensor:
    """The residual sum: normalised after in a post-norm layer."""
    return x if pre_norm else norm(x)


def _feed_forward(layer: nn.Module, x: Tensor, pre_norm: bool) -> Tensor:
    norm = layer.final_layer_norm
    h = _before(x, norm, pre_norm)
    return _after(x + layer.fc2(layer.activation_fn(layer.fc1(h))), norm, pre_norm)


class ImportedEncoder(nn.Module):
    """src_ids (B, S), src_lengths (B,) -> memory (B, S, H), then every decoder state's
    initial value: empty self-attention caches, cross-attention keys/values, position 0."""

    def __init__(self, parts: StackParts) -> None:
        super().__init__()
        self.embed = parts.embed_source
        self.layers = parts.encoder_layers
        self.final_norm = parts.encoder_norm
        self.decoder_layers = parts.decoder_layers  # their cross-attention projections
        self.pre_norm = parts.pre_norm

    def forward(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        positions = torch.arange(src_ids.shape[1], device=src_ids.device)  # (S,)
        mask = positions.unsqueeze(0) < src_lengths.unsqueeze(1)  # (B, S)
        allowed = mask.unsqueeze(1)  # (B, 1, S)
        x = self.embed(src_ids, positions.unsqueeze(0).expand_as(src_ids))  # (B, S, H)
        for layer in self.layers:
            norm = layer.self_attn_layer_norm
            h = _before(x, norm, self.pre_norm)
            keys, values = _project_keys_values(layer.self_attn, h)  # (B, h, S, d)
            attended, _ = _attend(layer.self_attn, h, keys, values, allowed)  # (B, S, H)
            x = _after(x + attended, norm, self.pre_norm)
            x = _feed_forward(layer, x, self.pre_norm)
        if self.final_norm is not None:
            x = self.final_norm(x)
        memory = x  # (B, S, H)
        states: list[Tensor] = []
        for layer in self.decoder_layers:
            cross_keys, cross_values = _project_keys_values(layer.encoder_attn, memory)
            empty = cross_keys[:, :, :0]  # (B, h, 0, d): no step decoded yet
            states += [empty, empty, cross_keys, cross_values]
        position = src_lengths * 0  # (B,) int64 zeros
        return (memory, *states, position)


class ImportedDecoderStep(nn.Module):
    """ONE decoder step: prev_ids (B,), memory (B, S, H) (unread: the cross-attention
    keys/values are states; export keeps the declared input), src_mask (B, S) bool, then
    the states in `state_specs` order -> log_probs (B, V) float32, attention (B, S) (the
    last layer's cross-attention, mean over heads), then every state updated."""

    def __init__(self, parts: StackParts) -> None:
        super().__init__()
        self.embed = parts.embed_target
        self.layers = parts.decoder_layers
        self.final_norm = parts.decoder_norm
        self.lm_head = parts.lm_head
        self.pre_norm = parts.pre_norm
        vocab = parts.logits_bias.shape[0]
        if getattr(parts.lm_head, "bias", None) is not None:
            raise ValueError("the output projection has a bias of its own; expected none")
        self.register_buffer("logits_bias", parts.logits_bias.detach().clone())
        lowest = torch.finfo(torch.float32).min
        suppressed = torch.zeros(vocab)  # added after the log-softmax: an Add, not a Where
        suppressed[list(parts.suppressed_ids)] = lowest  # lowest + a log-prob stays lowest
        self.register_buffer("suppressed", suppressed)
        self.has_suppressed = bool(parts.suppressed_ids)
        self.forced_bos = parts.forced_bos_id is not None
        forced = torch.full((vocab,), lowest)
        if parts.forced_bos_id is not None:
            forced[parts.forced_bos_id] = 0.0
        self.register_buffer("forced_row", forced)

    def forward(
        self, prev_ids: Tensor, memory: Tensor, src_mask: Tensor, *states: Tensor
    ) -> tuple[Tensor, ...]:
        position = states[-1]  # (B,)
        cache_length = states[0].shape[2] + 1  # slots after this step's key is appended
        slots = torch.arange(cache_length, device=prev_ids.device).unsqueeze(0)  # (1, T+1)
        first_used = (cache_length - 1 - position).unsqueeze(1)  # (B, 1)
        self_allowed = (slots >= first_used).unsqueeze(1)  # (B, 1, T+1)
        src_allowed = src_mask.unsqueeze(1)  # (B, 1, S)
        x = self.embed(prev_ids.unsqueeze(1), position.unsqueeze(1))  # (B, 1, H)
        new_states: list[Tensor] = []
        weights = src_mask.new_zeros(())  # replaced by every layer; the last one is reported
        for index, layer in enumerate(self.layers):
            cached_keys, cached_values, cross_keys, cross_values = states[4 * index : 4 * index + 4]
            norm = layer.self_attn_layer_norm
            h = _before(x, norm, self.pre_norm)
            new_keys, new_values = _project_keys_values(layer.self_attn, h)  # (B, h, 1, d)
            keys = torch.cat([cached_keys, new_keys], dim=2)  # (B, h, T+1, d)
            values = torch.cat([cached_values, new_values], dim=2)
            attended, _ = _attend(layer.self_attn, h, keys, values, self_allowed)  # (B, 1, H)
            x = _after(x + attended, norm, self.pre_norm)
            norm = layer.encoder_attn_layer_norm
            h = _before(x, norm, self.pre_norm)
            crossed, weights = _attend(layer.encoder_attn, h, cross_keys, cross_values, src_allowed)
            x = _after(x + crossed, norm, self.pre_norm)
            x = _feed_forward(layer, x, self.pre_norm)
            new_states += [keys, values, cross_keys, cross_values]
        if self.final_norm is not None:
            x = self.final_norm(x)
        # one Gemm with its bias (final_logits_bias): a separate (B, V) Add cost ~2% a step
        logits = F.linear(x.squeeze(1), self.lm_head.weight, self.logits_bias)  # (B, V)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        # Hugging Face applies its logits processors after the log-softmax (no renormalising)
        if self.has_suppressed:
            log_probs = log_probs + self.suppressed
        if self.forced_bos:
            first = (position == 0).unsqueeze(1)  # (B, 1)
            log_probs = torch.where(first, self.forced_row, log_probs)
        attention = weights.mean(dim=1).squeeze(1).float()  # (B, h, 1, S) -> (B, S)
        return (log_probs, attention, *new_states, position + 1)
