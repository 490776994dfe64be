"""A forward pass of Marian's transformer written from its sources, in PyTorch (float32,
dequantized weights): the reference the exported graphs are checked against.

It follows src/models/transformer.h line by line, over whole sequences (teacher forcing),
not step by step as the exported decoder runs, so that the two share no code:
- embeddings: rows of the embedding matrix times sqrt(dim-emb), plus sinusoids
  (inits::sinusoidalPositionEmbeddings: sin in the first half, cos in the second, timescale
  increment log(10000) / (dim / 2 - 1)); the decoder's first input is a zero vector;
- a sublayer: `preProcess` (LayerNorm "_pre" when transformer-preprocess has n) of the
  input gives the QUERIES; keys and values are the raw input (LayerAttention); then
  `postProcess` applies its letters in order (a: add the input, n: LayerNorm);
- attention: softmax(q k^T / sqrt(d) + mask) v per head, the mask adding
  max(lowest / 2, -99999999) at padded positions (transposedLogMask);
- SSRU (src/rnn/cells.h): x = input W, f = input Wf + bf, c_t = sigmoid(f) c_{t-1} +
  (1 - sigmoid(f)) x, output relu(c_t), start state zeros;
- LayerNorm: eps 1e-6 (layers/generic.h); output: the decoder's embedding transposed (tied)
  plus `decoder_ff_logit_out_b`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from model_export.importers.marian_nmt.weights import MarianWeights

LAYER_NORM_EPS = 1e-6
MASK_VALUE = -99999999.0  # Marian's transposedLogMask factor for float32


def sinusoids(positions: int, dim: int) -> np.ndarray:
    """(positions, dim) float32, as inits::sinusoidalPositionEmbeddings computes them."""
    half = dim // 2
    increment = np.float32(np.log(np.float32(10000.0)) / np.float32(half - 1.0))
    scales = np.exp(np.arange(half, dtype=np.float32) * -increment).astype(np.float32)
    angles = np.arange(positions, dtype=np.float32)[:, None] * scales[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


def _activation(name: str, x: Tensor) -> Tensor:
    if name == "relu":
        return F.relu(x)
    if name == "swish":
        return x * torch.sigmoid(x)
    return x * torch.sigmoid(1.702 * x)  # Marian's gelu


class MarianReference:
    """Whole-sequence encoder and decoder over a model's float weights."""

    def __init__(self, weights: MarianWeights, dtype: torch.dtype = torch.float32) -> None:
        """`dtype` float64 computes over the same (float32) weights without float32's
        rounding: the exact forward pass an implementation's error is measured against."""
        self.arch = weights.arch
        self.dtype = dtype
        self._weights = weights
        self._tensors: dict[str, Tensor] = {}
        output, transposed = weights.output_layer()
        table = torch.from_numpy(np.array(weights.value(output))).to(dtype)
        self.output_weight = table.T if transposed else table  # (H, V)
        bias_name = "decoder_ff_logit_out_b"
        self.output_bias = self.w(bias_name)[0] if self.arch.output_bias else None

    def w(self, name: str) -> Tensor:
        if name not in self._tensors:
            value = torch.from_numpy(np.array(self._weights.value(name)))
            self._tensors[name] = value.to(self.dtype)
        return self._tensors[name]

    # --- building blocks ---------------------------------------------------------------
    def _layer_norm(self, x: Tensor, prefix: str, suffix: str = "") -> Tensor:
        scale = self.w(f"{prefix}_ln_scale{suffix}")[0]
        bias = self.w(f"{prefix}_ln_bias{suffix}")[0]
        return F.layer_norm(x, (x.shape[-1],), scale, bias, LAYER_NORM_EPS)

    def _pre(self, x: Tensor, prefix: str, ops: str) -> Tensor:
        return self._layer_norm(x, prefix, "_pre") if "n" in ops else x

    def _post(self, y: Tensor, x: Tensor, prefix: str, ops: str) -> Tensor:
        for op in ops:
            if op == "a":
                y = y + x
            elif op == "n":
                y = self._layer_norm(y, prefix)
        return y

    def _affine(self, x: Tensor, weight: str, bias: str | None) -> Tensor:
        y = x @ self.w(weight)
        return y + self.w(bias)[0] if bias is not None else y

    def _attention(self, prefix: str, queries: Tensor, keys: Tensor, add_mask: Tensor) -> Tensor:
        """queries (B, Tq, H) over keys = values (B, Tk, H); add_mask (B, 1, Tq|1, Tk)."""
        heads = self.arch.heads
        batch, tq, width = queries.shape
        depth = width // heads

        def split(x: Tensor) -> Tensor:  # (B, T, H) -> (B, heads, T, d)
            return x.reshape(x.shape[0], x.shape[1], heads, depth).transpose(1, 2)

        q = split(self._affine(queries, f"{prefix}_Wq", f"{prefix}_bq"))
        k = split(self._affine(keys, f"{prefix}_Wk", f"{prefix}_bk"))
        v = split(self._affine(keys, f"{prefix}_Wv", f"{prefix}_bv"))
        scores = q @ k.transpose(2, 3) * (1.0 / math.sqrt(depth)) + add_mask
        mixed = torch.softmax(scores, dim=-1) @ v  # (B, heads, Tq, d)
        joined = mixed.transpose(1, 2).reshape(batch, tq, width)
        return self._affine(joined, f"{prefix}_Wo", f"{prefix}_bo")

    def _attention_layer(
        self, prefix: str, x: Tensor, keys: Tensor | None, add_mask: Tensor
    ) -> Tensor:
        """LayerAttention: queries from the preprocessed input, keys/values as given (the
        raw input for self-attention)."""
        arch = self.arch
        queries = self._pre(x, f"{prefix}_Wo", arch.preprocess)
        out = self._attention(prefix, queries, x if keys is None else keys, add_mask)
        return self._post(out, x, f"{prefix}_Wo", arch.postprocess)

    def _ffn(self, prefix: str, x: Tensor, depth: int) -> Tensor:
        arch = self.arch
        h = self._pre(x, f"{prefix}_ffn", arch.preprocess)
        for i in range(1, depth):
            h = _activation(arch.activation, self._affine(h, f"{prefix}_W{i}", f"{prefix}_b{i}"))
        h = self._affine(h, f"{prefix}_W{depth}", f"{prefix}_b{depth}")
        return self._post(h, x, f"{prefix}_ffn", arch.postprocess)

    def _embed(self, stack: str, ids: Tensor, start_zero: bool) -> Tensor:
        table = self.w(self.arch.embedding(stack))
        x = table[ids] * math.sqrt(self.arch.dim)  # (B, T, H)
        if start_zero:
            x[:, 0] = 0.0
        x = x + torch.from_numpy(sinusoids(ids.shape[1], self.arch.dim)).to(self.dtype)
        if self.arch.postprocess_emb:
            x = self._layer_norm(x, f"{stack}_emb", "_pre")
        return x

    # --- the model -----------------------------------------------------------------------
    def encode(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """src_ids (B, S) -> memory (B, S, H) and the source mask (B, S) bool."""
        mask = torch.arange(src_ids.shape[1])[None, :] < src_lengths[:, None]
        add_mask = ((~mask).to(self.dtype) * MASK_VALUE)[:, None, None, :]  # (B, 1, 1, S)
        x = self._embed("encoder", src_ids, start_zero=False)
        first = x
        for layer in range(1, self.arch.encoder_layers + 1):
            x = self._attention_layer(f"encoder_l{layer}_self", x, None, add_mask)
            x = self._ffn(f"encoder_l{layer}_ffn", x, self.arch.ffn_depth)
        return self._post(x, first, "encoder_top", self.arch.postprocess_top), mask

    def _ssru(self, prefix: str, x: Tensor) -> Tensor:
        arch = self.arch
        h = self._pre(x, prefix, arch.preprocess)
        inputs = h @ self.w(f"{prefix}_W")  # (B, T, H)
        forget = torch.sigmoid(self._affine(h, f"{prefix}_Wf", f"{prefix}_bf"))
        cell = torch.zeros_like(inputs[:, 0])
        outputs = []
        for t in range(x.shape[1]):
            cell = forget[:, t] * cell + (1.0 - forget[:, t]) * inputs[:, t]
            outputs.append(torch.relu(cell))
        out = torch.stack(outputs, dim=1)
        if arch.rnn_projection:
            out = self._affine(out, f"{prefix}_Wo", f"{prefix}_bo")
        return self._post(out, x, f"{prefix}_ffn", arch.postprocess)

    def decode(
        self, memory: Tensor, src_mask: Tensor, target_in: Tensor, *, last_only: bool = False
    ) -> Tensor:
        """Logits (B, T, V) for decoder inputs (B, T): position t reads target_in[:, t]
        (t >= 1; the first input is Marian's zero start embedding); `last_only`: the last
        position's only (B, 1, V), which is all greedy search needs."""
        arch = self.arch
        steps = target_in.shape[1]
        x = self._embed("decoder", target_in, start_zero=True)
        first = x
        src_add = ((~src_mask).to(self.dtype) * MASK_VALUE)[:, None, None, :]
        causal = torch.tril(torch.ones(steps, steps, dtype=torch.bool))
        self_add = ((~causal).to(self.dtype) * MASK_VALUE)[None, None]  # (1, 1, T, T)
        for layer in range(1, arch.decoder_layers + 1):
            if arch.autoregression == "rnn":
                x = self._ssru(f"decoder_l{layer}_rnn", x)
            else:
                x = self._attention_layer(f"decoder_l{layer}_self", x, None, self_add)
            x = self._attention_layer(f"decoder_l{layer}_context", x, memory, src_add)
            x = self._ffn(f"decoder_l{layer}_ffn", x, arch.decoder_ffn_depth)
        x = self._post(x, first, "decoder_top", arch.postprocess_top)
        if last_only:
            x = x[:, -1:]
        logits = x @ self.output_weight
        return logits + self.output_bias if self.output_bias is not None else logits

    @torch.no_grad()
    def log_probs(self, source: list[int], target: list[int]) -> np.ndarray:
        """log-softmax (T + 1, V) of every step of `target` fed after the start (teacher
        forcing): row t predicts target[t] (row T predicts what follows it)."""
        src = torch.tensor([source])
        memory, mask = self.encode(src, torch.tensor([len(source)]))
        target_in = torch.tensor([[0, *target]])
        logits = self.decode(memory, mask, target_in)[0]
        return torch.log_softmax(logits, dim=-1).numpy().astype(np.float32)

    @torch.no_grad()
    def greedy(
        self,
        source: list[int],
        *,
        eos_id: int,
        max_tokens: int,
        suppressed: tuple[int, ...] = (),
        allowed: np.ndarray | None = None,
    ) -> list[int]:
        """Greedy output ids (EOS excluded) of one source, the whole prefix recomputed at each
        step; `allowed` (sorted ids) restricts the output vocabulary as a shortlist does."""
        src = torch.tensor([source])
        memory, mask = self.encode(src, torch.tensor([len(source)]))
        out: list[int] = []
        while len(out) < max_tokens:
            logits = self.decode(memory, mask, torch.tensor([[0, *out]]), last_only=True)[0, -1]
            if allowed is not None:
                restricted = torch.full_like(logits, -math.inf)
                index = torch.from_numpy(allowed)
                restricted[index] = logits[index]
                logits = restricted
            logits[list(suppressed)] = -math.inf
            token = int(torch.argmax(logits))
            if token == eos_id:
                break
            out.append(token)
        return out
