"""Marian's transformer as the bundle's graphs: encoder.onnx, decoder.onnx (one step over the
whole vocabulary) and, with a lexical shortlist, decoder_shortlist.onnx (one step over the
vocabulary ids it is given).

Precision:
- fp32: every product in float32 over the dequantized weights (w = q * (1 / m)).
- int8: the products Marian runs in int8 (every affine layer and the output layer; the
  attention's own products stay float, as in Marian) run as onnxruntime's MatMulInteger on
  the model's own int8 weights. The activation x is quantized as Marian's intgemm does:
  round(x * a) clipped to [-127, 127], with `a` the model's precomputed multiplier
  (`<weight>_QuantMultA`, Bergamot's "alphas") or, without one, 127 / max|x| per product;
  stored with zero point 127 (uint8, as intgemm's shifted variant), and the int32 result
  scaled by 1 / (a * m). The output layer uses the embedding requantized with
  m = 127 / max|w|, as Bergamot's fork does after it dequantizes its Wemb.
Embedding lookups read the stored matrix (int8 rows dequantized), so the tied embedding is
stored once for all graphs; the full-vocabulary output layer reads it transposed (a
Transpose of a constant, which onnxruntime folds once at load).

Decoder states (bundle schema 2), per decoder layer l (1-based, as Marian names layers):
  cell_l           (B, H)        SSRU cell state (rnn decoder)
  self_keys_l      (B, h, T, d)  target axis 2 (self-attention decoder), newest slot last
  self_values_l    (B, h, T, d)  target axis 2
  cross_keys_l     (B, h, d, S)  source axis 3, constant (stored transposed for q k^T)
  cross_values_l   (B, h, S, d)  source axis 2, constant
  position         (B,) int64    tokens fed so far
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from onnx import TensorProto

from model_export.importers.marian_nmt.config import MarianArchitecture
from model_export.importers.marian_nmt.onnx_graph import Graph, WeightStore
from model_export.importers.marian_nmt.reference import LAYER_NORM_EPS, MASK_VALUE, sinusoids
from model_export.importers.marian_nmt.weights import MarianWeights, Matrix
from service import bundle as contract

Precision = Literal["fp32", "int8"]
SHORTLIST_DECODER_FILE = contract.SHORTLIST_DECODER_FILE
LOWEST = float(np.finfo(np.float32).min)
F32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def state_specs(arch: MarianArchitecture) -> list[dict[str, object]]:
    """The manifest's `states`, in graph order."""
    specs: list[dict[str, object]] = []
    for layer in range(1, arch.decoder_layers + 1):
        if arch.autoregression == "rnn":
            specs.append({"name": f"cell_{layer}", "batch_axis": 0})
        else:
            specs += [
                {"name": f"self_{kind}_{layer}", "batch_axis": 0, "target_axis": 2}
                for kind in ("keys", "values")
            ]
        specs.append(
            {"name": f"cross_keys_{layer}", "batch_axis": 0, "source_axis": 3, "constant": True}
        )
        specs.append(
            {"name": f"cross_values_{layer}", "batch_axis": 0, "source_axis": 2, "constant": True}
        )
    return [*specs, {"name": "position", "batch_axis": 0}]  # fmt: skip


def requantized(value: np.ndarray) -> tuple[np.ndarray, float]:
    """Marian's 8-bit quantization of a float matrix: (q, m) with m = 127 / max|w|."""
    mult = np.float32(127.0) / np.float32(np.abs(value).max())
    return np.clip(np.rint(value * mult), -127, 127).astype(np.int8), float(mult)


@dataclass(frozen=True)
class BuildOptions:
    precision: Precision
    max_positions: int  # rows of the sinusoid table: the longest source or target
    suppressed_ids: tuple[int, ...]  # never generated (Marian's <unk>, allow-unk off)


class _Layers:
    """The building blocks of one graph over one model's weights."""

    def __init__(self, g: Graph, weights: MarianWeights, options: BuildOptions) -> None:
        self.g = g
        self.w = weights
        self.arch = weights.arch
        self.options = options

    # --- weights and products --------------------------------------------------------------
    def _float(self, name: str) -> str:
        value = self.w.value(name)
        return self.g.weight(name, value.reshape(-1) if value.shape[0] == 1 else value)

    def _int8(self, name: str, matrix: Matrix) -> tuple[str, float]:
        """The stored int8 matrix and its multiplier (quantized here from floats, with
        Marian's rule, when the model stores none)."""
        if matrix.bits == 8:
            assert matrix.quantized is not None and matrix.multiplier is not None
            return self.g.weight(f"{name}.q8", matrix.quantized), matrix.multiplier
        q, mult = requantized(matrix.value)
        return self.g.weight(f"{name}.q8", q), mult

    def _quantize(self, x: str, alpha: float | None) -> tuple[str, str]:
        """x (float) -> (uint8 x quantized with zero point 127, 1 / alpha as a tensor)."""
        g = self.g
        zero = g.const(np.uint8(127), "zp")
        if alpha is not None:
            bound = 127.0 / alpha
            clipped = g.op("Clip", x, g.const(np.float32(-bound)), g.const(np.float32(bound)))
            scale = g.const(np.float32(1.0 / np.float32(alpha)), "a_scale")
            return g.op("QuantizeLinear", clipped, scale, zero), scale
        largest = g.op("ReduceMax", g.op("Abs", x), keepdims=0)
        largest = g.op("Max", largest, g.const(np.float32(1e-30)))
        scale = g.op("Div", largest, g.const(np.float32(127.0)))
        return g.op("QuantizeLinear", x, scale, zero), scale

    def product(
        self,
        x: str,
        weight: str,
        *,
        bias: str | None = None,
        transposed: bool = False,
        columns: str | None = None,
    ) -> str:
        """x @ W (+ bias) in the graph's precision: W (k, n) as stored, or stored (n, k) and
        used transposed; `columns` keeps only those columns of W (the shortlist). In int8,
        one MatMulIntegerToFloat (onnxruntime's fused int8 product, scale and bias) runs it."""
        g = self.g
        matrix = self.w.get(weight)
        int8 = self.options.precision == "int8"
        w, mult = self._int8(weight, matrix) if int8 else (self._float(weight), 1.0)
        if columns is not None:
            w = g.op("Gather", w, columns, axis=0 if transposed else 1)
        if transposed:
            w = g.op("Transpose", w)
        if not int8:
            y = g.op("MatMul", x, w)
            return g.op("Add", y, bias) if bias is not None else y
        xq, x_scale = self._quantize(x, matrix.alpha)
        w_scale = g.const(np.float32(1.0 / np.float32(mult)), "w_scale")
        zero_points = (g.const(np.uint8(127), "zp"), g.const(np.int8(0), "w_zp"))
        return g.op(
            "MatMulIntegerToFloat",
            xq,
            w,
            x_scale,
            w_scale,
            *zero_points,
            *((bias,) if bias is not None else ()),
            domain="com.microsoft",
        )

    def affine(self, x: str, weight: str, bias: str | None) -> str:
        return self.product(x, weight, bias=self._float(bias) if bias is not None else None)

    # --- layers ----------------------------------------------------------------------------
    def layer_norm(self, x: str, prefix: str, suffix: str = "") -> str:
        return self.g.op(
            "LayerNormalization",
            x,
            self._float(f"{prefix}_ln_scale{suffix}"),
            self._float(f"{prefix}_ln_bias{suffix}"),
            axis=-1,
            epsilon=LAYER_NORM_EPS,
        )

    def pre(self, x: str, prefix: str) -> str:
        return self.layer_norm(x, prefix, "_pre") if "n" in self.arch.preprocess else x

    def post(self, y: str, x: str, prefix: str, ops: str | None = None) -> str:
        for letter in self.arch.postprocess if ops is None else ops:
            if letter == "a":
                y = self.g.op("Add", y, x)
            elif letter == "n":
                y = self.layer_norm(y, prefix)
        return y

    def activation(self, x: str) -> str:
        g = self.g
        kind = self.arch.activation
        if kind == "relu":
            return g.op("Relu", x)
        gate = x if kind == "swish" else g.op("Mul", x, g.const(np.float32(1.702)))
        return g.op("Mul", x, g.op("Sigmoid", gate))

    def ffn(self, prefix: str, x: str, depth: int) -> str:
        h = self.pre(x, f"{prefix}_ffn")
        for i in range(1, depth):
            h = self.activation(self.affine(h, f"{prefix}_W{i}", f"{prefix}_b{i}"))
        h = self.affine(h, f"{prefix}_W{depth}", f"{prefix}_b{depth}")
        return self.post(h, x, f"{prefix}_ffn")

    def embed(self, stack: str, ids: str) -> str:
        """ids (any shape) -> embedding rows * sqrt(dim), (..., H)."""
        g = self.g
        name = self.arch.embedding(stack)
        matrix = self.w.get(name)
        if self.options.precision == "int8" and matrix.bits == 8:
            q, mult = self._int8(name, matrix)
            rows = g.op("Cast", g.op("Gather", q, ids), to=F32)
            rows = g.op("Mul", rows, g.const(np.float32(1.0 / np.float32(mult))))
        else:
            rows = g.op("Gather", self._float(name), ids)
        return g.op("Mul", rows, g.const(np.float32(math.sqrt(self.arch.dim))))

    def positions(self) -> str:
        table = sinusoids(self.options.max_positions, self.arch.dim)
        return self.g.weight("positions", table)

    def split_heads(self, x: str, *, keys: bool = False) -> str:
        """(B, T, H) -> (B, h, T, d), or (B, h, d, T) for keys."""
        g = self.g
        heads = self.arch.heads
        shape = g.const(np.array([0, 0, heads, self.arch.dim // heads], np.int64))
        return g.op(
            "Transpose", g.op("Reshape", x, shape), perm=[0, 2, 3, 1] if keys else [0, 2, 1, 3]
        )

    def join_heads(self, x: str) -> str:
        """(B, h, T, d) -> (B, T, H)."""
        g = self.g
        return g.op(
            "Reshape",
            g.op("Transpose", x, perm=[0, 2, 1, 3]),
            g.const(np.array([0, 0, -1], np.int64)),
        )

    def attend(self, q: str, keys_t: str, values: str, add_mask: str) -> tuple[str, str]:
        """q (B, h, Tq, d) over keys (B, h, d, Tk) and values (B, h, Tk, d) -> mixed
        (B, h, Tq, d), weights (B, h, Tq, Tk)."""
        g = self.g
        depth = self.arch.dim // self.arch.heads
        scores = g.op("Mul", g.op("MatMul", q, keys_t), g.const(np.float32(1.0 / math.sqrt(depth))))
        weights = g.op("Softmax", g.op("Add", scores, add_mask), axis=-1)
        return g.op("MatMul", weights, values), weights

    def additive_mask(self, allowed: str) -> str:
        """A bool mask -> 0 where allowed, Marian's -99999999 elsewhere (float)."""
        g = self.g
        return g.op("Where", allowed, g.const(np.float32(0.0)), g.const(np.float32(MASK_VALUE)))


def _heads(layers: _Layers, x: str, weight: str, bias: str, *, keys: bool = False) -> str:
    return layers.split_heads(layers.affine(x, weight, bias), keys=keys)


def build_encoder(weights: MarianWeights, store: WeightStore, options: BuildOptions) -> Graph:
    """src_ids (B, S), src_lengths (B,) -> memory (B, S, H) and every state's first value."""
    arch = weights.arch
    g = Graph("marian_encoder", store)
    lay = _Layers(g, weights, options)
    src = g.input(contract.ENC_SRC_IDS, I64, ["batch", "source"])
    lengths = g.input(contract.ENC_SRC_LENGTHS, I64, ["batch"])
    shape = g.op("Shape", src)
    length = g.op("Gather", shape, g.const(np.int64(1)), axis=0)
    batch = g.op("Gather", shape, g.const(np.array([0], np.int64)), axis=0)
    steps = g.op("Range", g.const(np.int64(0)), length, g.const(np.int64(1)))  # (S,)
    valid = g.op(
        "Less",
        g.op("Unsqueeze", steps, g.const(np.array([0], np.int64))),
        g.op("Unsqueeze", lengths, g.const(np.array([1], np.int64))),
    )  # (B, S)
    add_mask = g.op("Unsqueeze", lay.additive_mask(valid), g.const(np.array([1, 2], np.int64)))
    x = g.op("Add", lay.embed("encoder", src), g.op("Gather", lay.positions(), steps))
    if arch.postprocess_emb:
        x = lay.layer_norm(x, "encoder_emb", "_pre")
    first = x
    for layer in range(1, arch.encoder_layers + 1):
        prefix = f"encoder_l{layer}_self"
        queries = lay.pre(x, f"{prefix}_Wo")
        q = _heads(lay, queries, f"{prefix}_Wq", f"{prefix}_bq")
        k = _heads(lay, x, f"{prefix}_Wk", f"{prefix}_bk", keys=True)
        v = _heads(lay, x, f"{prefix}_Wv", f"{prefix}_bv")
        mixed, _ = lay.attend(q, k, v, add_mask)
        out = lay.affine(lay.join_heads(mixed), f"{prefix}_Wo", f"{prefix}_bo")
        x = lay.post(out, x, f"{prefix}_Wo")
        x = lay.ffn(f"encoder_l{layer}_ffn", x, arch.ffn_depth)
    memory = lay.post(x, first, "encoder_top", arch.postprocess_top)
    g.output(contract.ENC_MEMORY, memory, F32, ["batch", "source", arch.dim])
    heads, depth = arch.heads, arch.dim // arch.heads
    for layer in range(1, arch.decoder_layers + 1):
        if arch.autoregression == "rnn":
            cell_shape = g.op("Concat", batch, g.const(np.array([arch.dim], np.int64)), axis=0)
            zeros = g.op("ConstantOfShape", cell_shape, value=_scalar(0.0))
            g.output(contract.init_state_name(f"cell_{layer}"), zeros, F32, ["batch", arch.dim])
        else:
            empty_shape = g.op(
                "Concat", batch, g.const(np.array([heads, 0, depth], np.int64)), axis=0
            )
            empty = g.op("ConstantOfShape", empty_shape, value=_scalar(0.0))
            for kind in ("keys", "values"):
                name = contract.init_state_name(f"self_{kind}_{layer}")
                g.output(name, empty, F32, ["batch", heads, 0, depth])
        prefix = f"decoder_l{layer}_context"
        keys = _heads(lay, memory, f"{prefix}_Wk", f"{prefix}_bk", keys=True)
        values = _heads(lay, memory, f"{prefix}_Wv", f"{prefix}_bv")
        g.output(
            contract.init_state_name(f"cross_keys_{layer}"),
            keys,
            F32,
            ["batch", heads, depth, "source"],
        )
        g.output(
            contract.init_state_name(f"cross_values_{layer}"),
            values,
            F32,
            ["batch", heads, "source", depth],
        )
    position = g.op("Mul", lengths, g.const(np.int64(0)))
    g.output(contract.init_state_name("position"), position, I64, ["batch"])
    return g  # fmt: skip


def _scalar(value: float):  # a ConstantOfShape value
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array([value], np.float32))


def build_decoder(
    weights: MarianWeights, store: WeightStore, options: BuildOptions, *, shortlist: bool
) -> Graph:
    """ONE step: prev_ids (B,), memory (unread), src_mask (B, S), states -> log_probs (B, V)
    (or (B, K) over `vocab_ids` (K,), each row restricted by `vocab_mask` (B, K)), the
    last layer's cross-attention mean over heads (B, S), and the updated states."""
    arch = weights.arch
    heads, depth = arch.heads, arch.dim // arch.heads
    g = Graph("marian_decoder_shortlist" if shortlist else "marian_decoder", store)
    lay = _Layers(g, weights, options)
    prev = g.input(contract.DEC_PREV_IDS, I64, ["batch"])
    g.input(contract.DEC_MEMORY, F32, ["batch", "source", arch.dim])
    src_mask = g.input(contract.DEC_SRC_MASK, BOOL, ["batch", "source"])
    states: dict[str, str] = {}
    for spec in state_specs(arch):
        name = str(spec["name"])
        shape: list[str | int]
        if name.startswith("cell_"):
            shape = ["batch", arch.dim]
        elif name.startswith("self_"):
            shape = ["batch", heads, "cache", depth]
        elif name.startswith("cross_keys_"):
            shape = ["batch", heads, depth, "source"]
        elif name.startswith("cross_values_"):
            shape = ["batch", heads, "source", depth]
        else:
            shape = ["batch"]
        states[name] = g.input(
            contract.state_input_name(name), I64 if name == "position" else F32, shape
        )
    vocab_ids = vocab_mask = None
    if shortlist:
        vocab_ids = g.input(contract.DEC_VOCAB_IDS, I64, ["vocab"])
        vocab_mask = g.input(contract.DEC_VOCAB_MASK, BOOL, ["batch", "vocab"])
    position = states["position"]
    first = g.op(
        "Unsqueeze", g.op("Equal", position, g.const(np.int64(0))), g.const(np.array([1], np.int64))
    )
    embedded = g.op("Where", first, g.const(np.float32(0.0)), lay.embed("decoder", prev))  # (B, H)
    x = g.op("Add", embedded, g.op("Gather", lay.positions(), position))
    if arch.postprocess_emb:
        x = lay.layer_norm(x, "decoder_emb", "_pre")
    start = x
    src_add = g.op("Unsqueeze", lay.additive_mask(src_mask), g.const(np.array([1, 2], np.int64)))
    updated: dict[str, str] = {}
    weights_last = ""
    for layer in range(1, arch.decoder_layers + 1):
        if arch.autoregression == "rnn":
            x, updated[f"cell_{layer}"] = _ssru_step(lay, layer, x, states[f"cell_{layer}"])
        else:
            x, keys, values = _self_attention_step(lay, layer, x, states, position)
            updated[f"self_keys_{layer}"], updated[f"self_values_{layer}"] = keys, values
        prefix = f"decoder_l{layer}_context"
        queries = lay.pre(x, f"{prefix}_Wo")
        q = g.op(
            "Reshape",
            lay.affine(queries, f"{prefix}_Wq", f"{prefix}_bq"),
            g.const(np.array([0, heads, 1, depth], np.int64)),
        )  # (B, h, 1, d)
        mixed, weights_last = lay.attend(
            q, states[f"cross_keys_{layer}"], states[f"cross_values_{layer}"], src_add
        )
        joined = g.op("Reshape", mixed, g.const(np.array([0, -1], np.int64)))  # (B, H)
        x = lay.post(lay.affine(joined, f"{prefix}_Wo", f"{prefix}_bo"), x, f"{prefix}_Wo")
        x = lay.ffn(f"decoder_l{layer}_ffn", x, arch.decoder_ffn_depth)
    x = lay.post(x, start, "decoder_top", arch.postprocess_top)
    log_probs = _output_layer(lay, x, vocab_ids, vocab_mask)
    vocab_axis = "vocab" if shortlist else arch.target_vocab
    g.output(contract.DEC_LOG_PROBS, log_probs, F32, ["batch", vocab_axis])
    attention = g.op(
        "ReduceMean",
        g.op("Squeeze", weights_last, g.const(np.array([2], np.int64))),
        axes=[1],
        keepdims=0,
    )
    g.output(contract.DEC_ATTENTION, attention, F32, ["batch", "source"])
    for spec in state_specs(arch):
        name = str(spec["name"])
        if spec.get("constant"):
            continue
        value = updated.get(name) or g.op("Add", position, g.const(np.int64(1)))
        element = I64 if name == "position" else F32
        shape = (
            ["batch"]
            if name == "position"
            else (
                ["batch", arch.dim]
                if name.startswith("cell_")
                else ["batch", heads, "cache_out", depth]
            )
        )
        g.output(contract.state_output_name(name), value, element, shape)
    return g  # fmt: skip


def _ssru_step(lay: _Layers, layer: int, x: str, cell: str) -> tuple[str, str]:
    """One SSRU step of decoder layer `layer`: (output (B, H), new cell state (B, H))."""
    g = lay.g
    prefix = f"decoder_l{layer}_rnn"
    h = lay.pre(x, prefix)
    candidate = lay.product(h, f"{prefix}_W")
    forget = g.op("Sigmoid", lay.affine(h, f"{prefix}_Wf", f"{prefix}_bf"))
    kept = g.op("Mul", forget, cell)
    fresh = g.op("Mul", g.op("Sub", g.const(np.float32(1.0)), forget), candidate)
    new_cell = g.op("Add", kept, fresh)
    out = g.op("Relu", new_cell)
    if lay.arch.rnn_projection:
        out = lay.affine(out, f"{prefix}_Wo", f"{prefix}_bo")
    return lay.post(out, x, f"{prefix}_ffn"), new_cell


def _self_attention_step(
    lay: _Layers, layer: int, x: str, states: dict[str, str], position: str
) -> tuple[str, str, str]:
    """Masked self-attention over the cached keys/values plus this step's: (output (B, H),
    new keys, new values (B, h, T + 1, d)). A row attends over its last position + 1
    slots only (rows that joined later are padded at the start)."""
    g = lay.g
    arch = lay.arch
    heads, depth = arch.heads, arch.dim // arch.heads
    prefix = f"decoder_l{layer}_self"
    as_heads = g.const(np.array([0, heads, 1, depth], np.int64))
    queries = lay.pre(x, f"{prefix}_Wo")
    q = g.op("Reshape", lay.affine(queries, f"{prefix}_Wq", f"{prefix}_bq"), as_heads)
    new_k = g.op("Reshape", lay.affine(x, f"{prefix}_Wk", f"{prefix}_bk"), as_heads)
    new_v = g.op("Reshape", lay.affine(x, f"{prefix}_Wv", f"{prefix}_bv"), as_heads)
    keys = g.op("Concat", states[f"self_keys_{layer}"], new_k, axis=2)  # (B, h, T+1, d)
    values = g.op("Concat", states[f"self_values_{layer}"], new_v, axis=2)
    slots = g.op("Gather", g.op("Shape", keys), g.const(np.int64(2)), axis=0)  # T + 1
    index = g.op("Range", g.const(np.int64(0)), slots, g.const(np.int64(1)))  # (T+1,)
    first_used = g.op("Sub", g.op("Sub", slots, g.const(np.int64(1))), position)  # (B,)
    allowed = g.op(
        "GreaterOrEqual",
        g.op("Unsqueeze", index, g.const(np.array([0], np.int64))),
        g.op("Unsqueeze", first_used, g.const(np.array([1], np.int64))),
    )  # (B, T+1)
    add_mask = g.op("Unsqueeze", lay.additive_mask(allowed), g.const(np.array([1, 2], np.int64)))
    mixed, _ = lay.attend(q, g.op("Transpose", keys, perm=[0, 1, 3, 2]), values, add_mask)
    joined = g.op("Reshape", mixed, g.const(np.array([0, -1], np.int64)))
    out = lay.affine(joined, f"{prefix}_Wo", f"{prefix}_bo")
    return lay.post(out, x, f"{prefix}_Wo"), keys, values  # fmt: skip


def _output_layer(lay: _Layers, x: str, vocab_ids: str | None, vocab_mask: str | None) -> str:
    """x (B, H) -> log-probs (B, V), or (B, K) over `vocab_ids`, each row restricted to
    its `vocab_mask` (the other columns get the lowest value before the log-softmax)."""
    g = lay.g
    arch = lay.arch
    name, transposed = lay.w.output_layer()
    suppressed = np.zeros(arch.target_vocab, np.float32)
    suppressed[list(lay.options.suppressed_ids)] = LOWEST
    penalty = g.weight("suppressed", suppressed)
    bias = None
    if arch.output_bias:
        bias = g.weight("decoder_ff_logit_out_b", lay.w.value("decoder_ff_logit_out_b").reshape(-1))
        bias = bias if vocab_ids is None else g.op("Gather", bias, vocab_ids)
    logits = lay.product(x, name, bias=bias, transposed=transposed, columns=vocab_ids)
    if vocab_ids is None:
        return g.op("Add", g.op("LogSoftmax", logits, axis=-1), penalty)
    assert vocab_mask is not None
    logits = g.op("Where", vocab_mask, logits, g.const(np.float32(LOWEST)))
    log_probs = g.op("LogSoftmax", logits, axis=-1)
    return g.op("Add", log_probs, g.op("Gather", penalty, vocab_ids))  # fmt: skip
