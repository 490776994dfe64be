"""A Marian model's parameters by Marian's own names, dequantized and (for intgemm items)
also as stored: the integers, their multiplier, and Bergamot's precomputed activation
multiplier (`<name>_QuantMultA`, the "alphas" of `*.intgemm.alphas.bin`).

Parameter names (src/models/transformer.h, src/layers/generic.*, src/rnn/cells.h):
  encoder_l<i>_self_{Wq,bq,Wk,bk,Wv,bv,Wo,bo}, ..._self_Wo_ln_{scale,bias}[_pre]
  encoder_l<i>_ffn_{W1,b1,...,W<d>,b<d>}, ..._ffn_ffn_ln_{scale,bias}[_pre]
  decoder_l<i>_self_* (self-attention decoder) or decoder_l<i>_rnn_{W,Wf,bf} and
  decoder_l<i>_rnn_ffn_ln_* (SSRU decoder), decoder_l<i>_context_* (cross-attention),
  decoder_l<i>_ffn_*; Wemb or {encoder,decoder}_Wemb; decoder_ff_logit_out_{Wt,b};
  {encoder,decoder}_emb_ln_*_pre and {encoder,decoder}_top_ln_* when configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_export.importers.checkpoint import ImportCheckpointError
from model_export.importers.marian_nmt.config import MarianArchitecture
from model_export.importers.marian_nmt.container import MODEL_YML, Item

ALPHA_SUFFIX = "_QuantMultA"


@dataclass(frozen=True)
class Matrix:
    """One parameter. `value` is what Marian computes with in float (w = q * (1 / m) for an
    intgemm item, as Bergamot's fork dequantizes its embeddings); `quantized` the stored
    integers in the same orientation."""

    value: np.ndarray  # float32, Marian's shape, e.g. (k, n) or (1, n)
    quantized: np.ndarray | None = None  # int8 / int16, same shape, C-contiguous
    multiplier: float | None = None  # m of w = q / m
    alpha: float | None = None  # activation multiplier: x is quantized as round(x * alpha)

    @property
    def bits(self) -> int | None:
        return None if self.quantized is None else 8 * self.quantized.dtype.itemsize


def _matrix(item: Item, alpha: float | None) -> Matrix:
    if item.kind == "intgemm":
        q = np.ascontiguousarray(item.values())
        m = item.quant_mult()
        value = q.astype(np.float32) * np.float32(1.0 / np.float32(m))
        return Matrix(value, q, m, alpha)
    if item.kind != "float":
        raise ImportCheckpointError(f"item {item.name!r} of type {item.type_name} is no weight")
    return Matrix(np.asarray(item.values(), np.float32), None, None, alpha)


def _alpha(item: Item) -> float:
    """An activation multiplier: a float item, or (Bergamot writes Wemb_QuantMultA as an
    intgemm8 1 x 1 matrix, since its name holds "Wemb") one to dequantize."""
    if item.kind == "intgemm":
        return float(item.values().reshape(-1)[0]) * float(np.float32(1.0 / item.quant_mult()))
    return float(np.asarray(item.values(), np.float64).reshape(-1)[0])


class MarianWeights:
    """The parameters of one model file; every name used is recorded, so that what the
    architecture does not read (a sign of an option it does not understand) is refused."""

    def __init__(self, items: dict[str, Item], arch: MarianArchitecture, path: Path) -> None:
        self.arch = arch
        self.path = path
        self._items = items
        self._read: set[str] = {MODEL_YML}
        self.alphas = {
            name[: -len(ALPHA_SUFFIX)]: _alpha(item)
            for name, item in items.items()
            if name.endswith(ALPHA_SUFFIX)
        }
        self._read |= {n + ALPHA_SUFFIX for n in self.alphas}
        self._cache: dict[str, Matrix] = {}

    def has(self, name: str) -> bool:
        return name in self._items

    def get(self, name: str) -> Matrix:
        if name not in self._cache:
            item = self._items.get(name)
            if item is None:
                raise ImportCheckpointError(
                    f"{self.path}: has no item {name!r}, which its config's architecture "
                    f"({self.arch.decoder_kind} decoder, {self.arch.encoder_layers}+"
                    f"{self.arch.decoder_layers} layers) needs"
                )
            self._cache[name] = _matrix(item, self.alphas.get(name))
            self._read.add(name)
        return self._cache[name]

    def value(self, name: str) -> np.ndarray:
        return self.get(name).value

    def optional(self, name: str) -> Matrix | None:
        return self.get(name) if self.has(name) else None

    def check_all_read(self) -> None:
        """Refuse a model with parameters the architecture never read."""
        unread = sorted(
            n for n in self._items if n not in self._read and not n.startswith("special:")
        )
        if unread:
            shown = ", ".join(unread[:4]) + (" ..." if len(unread) > 4 else "")
            raise ImportCheckpointError(
                f"{self.path}: {len(unread)} parameters are not part of the architecture its "
                f"config describes (an unsupported option?): {shown}"
            )

    @property
    def quantized(self) -> bool:
        """Some weight matrix is stored as 8-bit intgemm integers (the default precision of
        the bundle is then int8; intgemm16 models default to fp32)."""
        return any(item.type_name == "intgemm8" for item in self._items.values())

    @property
    def weight_types(self) -> dict[str, int]:
        """How many items of each stored type (for the manifest)."""
        counts: dict[str, int] = {}
        for name, item in self._items.items():
            if not name.startswith("special:"):
                counts[item.type_name] = counts.get(item.type_name, 0) + 1
        return counts

    def output_layer(self) -> tuple[str, bool]:
        """(the matrix of the output layer, whether it is stored (V, H) and used transposed)."""
        if self.arch.tied_output:
            return self.arch.embedding("decoder"), True
        if self.has("decoder_ff_logit_out_W"):  # legacy models: (H, V), not transposed
            return "decoder_ff_logit_out_W", False
        return "decoder_ff_logit_out_Wt", True

    def parameters(self) -> int:
        return sum(
            item.elements
            for name, item in self._items.items()
            if not name.startswith("special:") and not name.endswith(ALPHA_SUFFIX)
        )
