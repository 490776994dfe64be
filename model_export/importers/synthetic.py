"""Random-weight Marian checkpoints of any shape, written as `save_pretrained` writes them.

The importer's verification needs checkpoints of shapes nobody tuned it on. The default
init (std 0.02) decodes one repeated token from any source, which proves nothing, so these
use a large init (`init_std` 0.25-0.3) and a varied `final_logits_bias` with EOS raised
until a chosen share of sources end by EOS early (the rest run to the length cap): outputs
then differ from source to source and end both ways.

    seq2seq-export random-marian runs/unseen-marian --data data/prepared --languages en-de \\
        --d-model 192 --encoder-layers 3 --decoder-layers 1 --heads 6 --ffn-size 640
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class RandomMarianShape:
    """A MarianConfig's shape fields; every number with its unit."""

    d_model: int = 192
    encoder_layers: int = 3
    decoder_layers: int = 1
    heads: int = 6  # per attention, both stacks
    ffn_size: int = 640  # both stacks
    max_positions: int = 256  # tokens per side
    tied: bool = True  # one embedding table for encoder, decoder and output projection
    activation: str = "swish"
    init_std: float = 0.25
    ended: float = 0.4  # share of calibration sources that end by EOS within 16 greedy steps
    seed: int = 0

    def config_fields(self) -> dict[str, Any]:
        return {
            "d_model": self.d_model,
            "encoder_layers": self.encoder_layers,
            "decoder_layers": self.decoder_layers,
            "encoder_attention_heads": self.heads,
            "decoder_attention_heads": self.heads,
            "encoder_ffn_dim": self.ffn_size,
            "decoder_ffn_dim": self.ffn_size,
            "max_position_embeddings": self.max_positions,
            "activation_function": self.activation,
            "init_std": self.init_std,
            "share_encoder_decoder_embeddings": self.tied,
            "tie_word_embeddings": self.tied,
        }


def randomise_head(
    model: Any, tokenizer: Any, calibration: Sequence[str], *, ended: float, std: float, seed: int
) -> None:
    """A varied final_logits_bias, with EOS raised so that about `ended` of `calibration`
    (source texts) end by EOS within 16 greedy steps and the rest at the length cap.

    A random model's EOS logit trails the best one by a margin that changes little from
    step to step but much from source to source; the bias is set from the quantile of each
    source's smallest margin (steps a processor forces left out).
    """
    generator = torch.Generator().manual_seed(seed)
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        bias = model.final_logits_bias
        bias.copy_(torch.randn(bias.shape, generator=generator) * std)
        bias[0, eos] = -1e4  # measure the margins on full-length outputs
        batch = tokenizer(list(calibration), padding=True, truncation=True, return_tensors="pt")
        out = model.eval().generate(
            **batch,
            do_sample=False,
            num_beams=1,
            max_new_tokens=17,
            output_scores=True,
            return_dict_in_generate=True,
        )
        scores = torch.stack(out.scores[:-1])  # (steps, B, V); the last one forces EOS
        eos_logits = scores[..., eos].clone()
        scores[..., eos] = -torch.inf
        margins = scores.max(dim=-1).values - eos_logits  # (steps, B)
        margins[torch.isfinite(scores).sum(dim=-1) <= 1] = torch.inf  # a forced step
        # EOS wins where its bias exceeds -1e4 + the margin
        bias[0, eos] += float(torch.quantile(margins.min(dim=0).values, ended))


def save_random_marian(
    folder: Path, tokenizer: Any, calibration: Sequence[str], shape: RandomMarianShape
) -> Any:
    """A random-weight MarianMTModel over `tokenizer` (already saved in `folder`), with
    OPUS-MT's generation settings (pad never generated), saved; returns the model."""
    from transformers import MarianConfig, MarianMTModel

    pad = tokenizer.pad_token_id
    config = MarianConfig(
        vocab_size=tokenizer.vocab_size,
        scale_embedding=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        **shape.config_fields(),
    )
    torch.manual_seed(shape.seed)
    model = MarianMTModel(config)
    model.generation_config.bad_words_ids = [[pad]]  # as every OPUS-MT checkpoint has it
    randomise_head(
        model, tokenizer, calibration, ended=shape.ended, std=shape.init_std, seed=shape.seed
    )
    model.save_pretrained(folder)
    return model


def random_marian(
    data_dir: Path,
    out: Path,
    *,
    languages: str,
    shape: RandomMarianShape,
    spm_vocab_size: int = 4000,
) -> dict[str, Any]:
    """SentencePiece x2 and vocab.json fitted on the `translate-<languages>` training split
    (the code train-marian uses), then a random-weight model of `shape`; the test split stays
    held out for `verify-parity`. Returns a summary."""
    from model_export import data as prepared
    from model_export.hf_marian import MarianRecipe, write_tokenizer

    records = prepared.load_split(data_dir, f"translate-{languages}", "train")
    tokenizer = write_tokenizer(
        out,
        [r["source"] for r in records],
        [r["target"] for r in records],
        MarianRecipe(spm_vocab_size=spm_vocab_size, max_length=shape.max_positions),
        languages,
    )
    model = save_random_marian(out, tokenizer, [r["source"] for r in records[:64]], shape)
    return {
        "checkpoint": str(out),
        "languages": languages,
        "tokenizer_trained_on": f"translate-{languages} train split ({len(records)} pairs)",
        "vocab_size": model.config.vocab_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "shape": shape.__dict__,
    }
