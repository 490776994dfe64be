"""The architecture a Marian model's own config (`special:model.yml`) describes, checked.

Marian's transformer (src/models/transformer.h) as the options spell it. What the importer
supports is said here once; anything else is refused with one line naming the option:
- `type: transformer` with one encoder;
- `transformer-preprocess` from {"", "n"} (a LayerNorm before each sublayer, pre-norm),
  `transformer-postprocess` from the letters d (dropout: nothing at inference), a (residual
  add) and n (LayerNorm), e.g. "dan" (post-norm); the same for `-postprocess-emb` and
  `-postprocess-top`;
- the feed-forward block of `transformer-ffn-depth` layers with `transformer-ffn-activation`
  relu, swish or gelu (Marian's gelu is x * sigmoid(1.702 x)); the decoder may have its own
  `transformer-decoder-dim-ffn` / `-ffn-depth`;
- sinusoidal positions (transformer.h never reads trained ones: it asks for an option
  that does not exist, `transformer-train-positions`), token embeddings scaled by
  sqrt(dim-emb);
- `transformer-decoder-autoreg`: `self-attention` (the transformer decoder) or `rnn` with
  `dec-cell: ssru` (a simple recurrent unit per layer: the Bergamot students);
- embeddings: one `Wemb` for both stacks (`tied-embeddings-src` or `-all`) or one per stack
  (`encoder_Wemb`, `decoder_Wemb`); the output layer is the decoder's embedding transposed
  (`tied-embeddings` or `-all`) or `decoder_ff_logit_out_Wt`, with a bias unless
  `output-omit-bias`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from model_export.importers.checkpoint import ImportCheckpointError

Activation = Literal["relu", "swish", "gelu"]
Autoregression = Literal["self-attention", "rnn"]


@dataclass(frozen=True)
class MarianArchitecture:
    dim: int  # dim-emb = model width H
    heads: int
    encoder_layers: int
    decoder_layers: int
    ffn_dim: int
    ffn_depth: int
    decoder_ffn_dim: int
    decoder_ffn_depth: int
    activation: Activation
    preprocess: str  # "" or "n"
    postprocess: str  # letters of "dan"
    postprocess_emb: str  # "" or "n" (a LayerNorm of the embeddings, suffix _pre)
    postprocess_top: str
    autoregression: Autoregression
    rnn_projection: bool  # rnn decoder: an affine Wo after each SSRU
    shared_embeddings: bool  # both stacks read Wemb (tied-embeddings-src or -all)
    tied_output: bool  # the output layer is the decoder's embedding, transposed
    output_bias: bool
    source_vocab: int
    target_vocab: int
    version: str  # the Marian version that saved it

    @property
    def decoder_kind(self) -> str:
        return "ssru" if self.autoregression == "rnn" else "transformer"

    def embedding(self, stack: str) -> str:
        """The embedding matrix `stack` ("encoder" or "decoder") looks its tokens up in."""
        return "Wemb" if self.shared_embeddings else f"{stack}_Wemb"


def _ops(value: Any, allowed: str, option: str, path: Path) -> str:
    ops = "" if value is None else str(value)
    unknown = sorted(set(ops) - set(allowed))
    if unknown:
        raise ImportCheckpointError(
            f"{path}: {option}: {ops!r} uses {''.join(unknown)!r}; supported: letters of "
            f"{allowed!r}"
        )
    return ops


def parse_config(text: str, path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ImportCheckpointError(f"{path}: special:model.yml is not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ImportCheckpointError(f"{path}: special:model.yml is not a mapping of options")
    return config


def architecture(config: dict[str, Any], path: Path) -> MarianArchitecture:
    """Check the options against what the importer builds; refuse the rest by name."""

    def get(name: str, default: Any = None) -> Any:
        return config.get(name, default)

    def refuse(option: str, value: Any, supported: str) -> ImportCheckpointError:
        return ImportCheckpointError(
            f"{path}: {option}: {value!r} is not supported (supported: {supported})"
        )

    def ops(name: str, default: str, allowed: str) -> str:
        option = f"transformer-{name}"
        return _ops(get(option, default), allowed, option, path)

    if get("type") != "transformer":
        raise refuse("type", get("type"), "transformer")
    flags = {
        "right-left": False,
        "ulr": False,
        "transformer-no-projection": False,
        "transformer-pool": False,
        "layer-normalization": False,
    }
    for option, expected in flags.items():
        if bool(get(option, expected)) != expected:
            raise refuse(option, get(option), str(expected).lower())
    if get("transformer-tied-layers"):
        raise refuse("transformer-tied-layers", get("transformer-tied-layers"), "[]")
    if int(get("lemma-dim-emb", 0) or 0):
        raise refuse("lemma-dim-emb", get("lemma-dim-emb"), "0 (no factored vocabulary)")
    if get("output-approx-knn"):
        raise refuse("output-approx-knn", get("output-approx-knn"), "[] (no LSH output)")
    autoreg = get("transformer-decoder-autoreg", "self-attention")
    if autoreg not in ("self-attention", "rnn"):
        raise refuse("transformer-decoder-autoreg", autoreg, "self-attention, rnn")
    if autoreg == "rnn" and get("dec-cell", "gru") != "ssru":
        raise refuse("dec-cell", get("dec-cell"), "ssru (with transformer-decoder-autoreg: rnn)")
    activation = get("transformer-ffn-activation", "swish")
    if activation not in ("relu", "swish", "gelu"):
        raise refuse("transformer-ffn-activation", activation, "relu, swish, gelu")
    preprocess = ops("preprocess", "", "dn")
    dims = get("dim-vocabs") or []
    if len(dims) != 2:
        raise refuse("dim-vocabs", dims, "two sizes: source and target")
    dim, heads = int(get("dim-emb", 512)), int(get("transformer-heads", 8))
    if dim % heads:
        raise refuse("transformer-heads", heads, f"a divisor of dim-emb {dim}")
    ffn_dim, ffn_depth = int(get("transformer-dim-ffn", 2048)), int(get("transformer-ffn-depth", 2))
    tied_all = bool(get("tied-embeddings-all", False))
    return MarianArchitecture(
        dim=dim,
        heads=heads,
        encoder_layers=int(get("enc-depth", 6)),
        decoder_layers=int(get("dec-depth", 6)),
        ffn_dim=ffn_dim,
        ffn_depth=ffn_depth,
        decoder_ffn_dim=int(get("transformer-decoder-dim-ffn", 0) or 0) or ffn_dim,
        decoder_ffn_depth=int(get("transformer-decoder-ffn-depth", 0) or 0) or ffn_depth,
        activation=activation,
        preprocess=preprocess.replace("d", ""),
        postprocess=ops("postprocess", "dan", "dan"),
        postprocess_emb=ops("postprocess-emb", "d", "dn").replace("d", ""),
        postprocess_top=ops("postprocess-top", "", "dan"),
        autoregression=autoreg,
        rnn_projection=bool(get("transformer-rnn-projection", False)),
        shared_embeddings=tied_all or bool(get("tied-embeddings-src", False)),
        tied_output=tied_all or bool(get("tied-embeddings", False)),
        output_bias=not bool(get("output-omit-bias", False)),
        source_vocab=int(dims[0]),
        target_vocab=int(dims[1]),
        version=str(get("version", "")).strip(),
    )  # fmt: skip
