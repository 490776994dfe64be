"""Marian NMT model folders with random weights, written in Marian's own formats.

The weights are random (std large enough that outputs differ from position to position),
the SentencePiece vocabulary is trained here on a few sentences with Marian's conventions
(</s> = 0, <unk> = 1, no <s> or <pad>), and the shortlist is written in Marian's binary
layout with its checksum. Every parameter name is Marian's (src/models/transformer.h).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from model_export.importers.marian_nmt.container import (
    INTGEMM8,
    MODEL_YML,
    Item,
    float_item,
    quantized_item,
    text_item,
    write_bin,
    write_npz,
)
from service.engine.shortlist import MAGIC, marian_checksum

SENTENCES = [
    "A tool to compress files and folders quickly.",
    "Lua bindings for Pure Data, with examples.",
    "The weather is nice today, so we walk to the park.",
    "Please send me the invoice by Friday afternoon.",
    "Library for reading and writing images in many formats.",
    "Command line utility to convert text between encodings.",
    "Fonts for displaying mathematics on the screen.",
    "My sister lives in Paris and works as a nurse.",
] * 4
UPSTREAM_INTGEMM16 = 0x10002


@dataclass(frozen=True)
class Shape:
    decoder: str = "ssru"  # "ssru" (transformer-decoder-autoreg: rnn) or "transformer"
    storage: str = "bergamot-int8"  # or "float-npz", "upstream-int16", "float-bin"
    activation: str = "relu"
    preprocess: str = ""  # "" (post-norm, "dan") or "n" (pre-norm, then postprocess "da")
    tied: str = "all"  # "all" (one Wemb) or "none"
    shortlist: bool = True
    dim: int = 32
    heads: int = 4
    ffn: int = 64
    encoder_layers: int = 2
    decoder_layers: int = 2
    vocab: int = 96
    seed: int = 0


def train_vocab(path: Path, size: int) -> None:
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES),
        model_writer=model,
        vocab_size=size,
        model_type="unigram",
        eos_id=0,
        unk_id=1,
        bos_id=-1,
        pad_id=-1,
        hard_vocab_limit=True,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def config_yaml(shape: Shape) -> str:
    post = "dan" if shape.preprocess == "" else "da"
    config = {
        "type": "transformer",
        "dim-emb": shape.dim,
        "dim-vocabs": [shape.vocab, shape.vocab],
        "enc-depth": shape.encoder_layers,
        "dec-depth": shape.decoder_layers,
        "transformer-heads": shape.heads,
        "transformer-dim-ffn": shape.ffn,
        "transformer-ffn-depth": 2,
        "transformer-ffn-activation": shape.activation,
        "transformer-preprocess": shape.preprocess,
        "transformer-postprocess": post,
        "transformer-postprocess-emb": "d",
        "transformer-postprocess-top": "n" if shape.preprocess == "n" else "",
        "transformer-decoder-autoreg": "rnn" if shape.decoder == "ssru" else "self-attention",
        "dec-cell": "ssru" if shape.decoder == "ssru" else "gru",
        "tied-embeddings-all": shape.tied == "all",
        "tied-embeddings": False,
        "tied-embeddings-src": False,
        "output-omit-bias": False,
        "version": "v1.9.56 (random weights written by the tests)",
    }
    return yaml.safe_dump(config, sort_keys=True)


def parameters(shape: Shape) -> dict[str, np.ndarray]:
    """Every float parameter the shape's architecture reads, by Marian's name."""
    rng = np.random.default_rng(shape.seed)
    d, f, v = shape.dim, shape.ffn, shape.vocab

    def mat(rows: int, cols: int, scale: float = 0.35) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    def vec(cols: int, scale: float = 0.1, base: float = 0.0) -> np.ndarray:
        return (base + rng.standard_normal((1, cols)) * scale).astype(np.float32)

    out: dict[str, np.ndarray] = {}

    def norm(prefix: str, suffix: str = "") -> None:
        out[f"{prefix}_ln_scale{suffix}"] = vec(d, 0.1, 1.0)
        out[f"{prefix}_ln_bias{suffix}"] = vec(d)

    def attention(prefix: str) -> None:
        for p in "qkvo":
            out[f"{prefix}_W{p}"] = mat(d, d)
            out[f"{prefix}_b{p}"] = vec(d)
        if shape.preprocess:
            norm(f"{prefix}_Wo", "_pre")
        norm(f"{prefix}_Wo") if shape.preprocess == "" else None

    def ffn(prefix: str) -> None:
        out[f"{prefix}_W1"], out[f"{prefix}_b1"] = mat(d, f), vec(f)
        out[f"{prefix}_W2"], out[f"{prefix}_b2"] = mat(f, d, 0.2), vec(d)
        if shape.preprocess:
            norm(f"{prefix}_ffn", "_pre")
        else:
            norm(f"{prefix}_ffn")

    if shape.tied == "all":
        out["Wemb"] = mat(v, d, 0.5)
    else:
        out["encoder_Wemb"], out["decoder_Wemb"] = mat(v, d, 0.5), mat(v, d, 0.5)
        out["decoder_ff_logit_out_Wt"] = mat(v, d, 0.5)
    out["decoder_ff_logit_out_b"] = vec(v, 0.5)
    for layer in range(1, shape.encoder_layers + 1):
        attention(f"encoder_l{layer}_self")
        ffn(f"encoder_l{layer}_ffn")
    for layer in range(1, shape.decoder_layers + 1):
        if shape.decoder == "ssru":
            prefix = f"decoder_l{layer}_rnn"
            out[f"{prefix}_W"], out[f"{prefix}_Wf"] = mat(d, d), mat(d, d)
            out[f"{prefix}_bf"] = vec(d)
            if shape.preprocess:
                norm(prefix, "_pre")
            norm(f"{prefix}_ffn") if shape.preprocess == "" else None
        else:
            attention(f"decoder_l{layer}_self")
        attention(f"decoder_l{layer}_context")
        ffn(f"decoder_l{layer}_ffn")
    if shape.preprocess:
        norm("encoder_top")
        norm("decoder_top")
    return out


def _quantizable(name: str) -> bool:
    """marian-conv quantizes names ending in _W or _W<x>, and (Bergamot) Wemb."""
    return name.endswith("_W") or name[-3:-1] == "_W" or "Wemb" in name


def _items(shape: Shape, weights: dict[str, np.ndarray]) -> list[Item]:
    items = [text_item(MODEL_YML, config_yaml(shape))]
    for name, value in sorted(weights.items()):
        if shape.storage == "bergamot-int8" and _quantizable(name):
            items.append(quantized_item(name, value, code=INTGEMM8["bergamot"]))
            if "Wemb" not in name or name == "Wemb":  # Bergamot's activation multipliers
                alpha = np.float32(127.0 / 6.0)
                if "Wemb" in name:  # written as an intgemm8 1 x 1 matrix, as Bergamot does
                    items.append(
                        quantized_item(
                            f"{name}_QuantMultA", np.full((1, 1), alpha), code=INTGEMM8["bergamot"]
                        )
                    )
                else:
                    items.append(float_item(f"{name}_QuantMultA", np.full((1, 1), alpha)))
        elif shape.storage == "upstream-int16" and _quantizable(name) and "Wemb" not in name:
            items.append(quantized_item(name, value, code=UPSTREAM_INTGEMM16, bits=16))
        else:
            items.append(float_item(name, value))
    return items


def write_shortlist(
    path: Path, vocab: int, *, first_num: int = 8, best_num: int = 6, seed: int = 0
) -> None:
    """Marian's binary shortlist: per source id `best_num` random target ids."""
    rng = np.random.default_rng(seed)
    lists = [np.sort(rng.choice(vocab, best_num, replace=False)) for _ in range(vocab)]
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype("<u8")
    candidates = np.concatenate(lists).astype("<u4")
    body = np.array([first_num, best_num, offsets.size, candidates.size], "<u8").tobytes()
    body += offsets.tobytes() + candidates.tobytes()
    words = np.frombuffer(body[: len(body) // 8 * 8], "<u8")
    header = np.array([MAGIC, marian_checksum(words)], "<u8").tobytes()
    path.write_bytes(header + body)


def make_marian_folder(folder: Path, shape: Shape = Shape()) -> Path:
    """A Bergamot-style folder: model.enpt.*, vocab.enpt.spm, lex.*.s2t.bin, a config."""
    folder.mkdir(parents=True)
    train_vocab(folder / "vocab.enpt.spm", shape.vocab)
    weights = parameters(shape)
    items = _items(shape, weights)
    if shape.storage == "float-npz":
        model = "model.enpt.npz"
        write_npz(folder / model, weights, config_yaml(shape))
    else:
        model = "model.enpt.intgemm.alphas.bin"
        write_bin(folder / model, items)
    decoder = {
        "relative-paths": True,
        "models": [model],
        "vocabs": ["vocab.enpt.spm", "vocab.enpt.spm"],
        "beam-size": 1,
        "max-length-factor": 2.5,
    }
    if shape.shortlist:
        write_shortlist(folder / "lex.50.50.enpt.s2t.bin", shape.vocab, seed=shape.seed)
        decoder["shortlist"] = ["lex.50.50.enpt.s2t.bin", False]
    (folder / "config.intgemm8bitalpha.yml").write_text(yaml.safe_dump(decoder), encoding="utf-8")
    return folder
