"""Hugging Face checkpoints built in the test run, as `save_pretrained` writes them.

Tokenizers are trained in a second on the Debian fixture text (minus the held-out texts):
Marian's two SentencePiece models with a joint `vocab.json`, and BART's byte-level BPE.
Models come from configs with a large init (std 0.3) and an EOS bias calibrated so that
their outputs are varied and end at varied lengths (the default init repeats one token).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from tokenizers import ByteLevelBPETokenizer

from model_export.hf_marian import MarianRecipe, write_tokenizer
from tests.conftest import HELDOUT

FIXTURE_LISTS = Path(__file__).parents[2] / "fixtures" / "debian"
TRANSLATION = "deb.debian.org_debian_dists_bookworm_main_i18n_Translation-{}"
INIT_STD = 0.3


@lru_cache
def heldout_texts() -> tuple[str, ...]:
    """Every text of the held-out fixtures (sources, targets, questions, contexts), once."""
    texts: dict[str, None] = {}
    for path in sorted(HELDOUT.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            for key in ("source", "target", "question", "context", "answer"):
                if record.get(key):
                    texts[str(record[key])] = None
    return tuple(texts)


@lru_cache
def fixture_lines(language: str) -> tuple[str, ...]:
    """Description lines of the fixture's Translation-<language>, held-out texts left out."""
    held = set(heldout_texts())
    lines = []
    text = (FIXTURE_LISTS / TRANSLATION.format(language)).read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("Description-") and ":" in line:
            line = line.split(":", 1)[1]
        elif not line.startswith(" ") or line.strip() == ".":
            continue
        if line.strip() and line.strip() not in held:
            lines.append(line.strip())
    return tuple(lines)


def write_marian_tokenizer(
    folder: Path, *, vocab_size: int = 400, source: str = "en", target: str = "fr"
) -> Any:
    """source.spm, target.spm and a joint vocab.json as OPUS-MT ships them (</s> 0, <unk> 1,
    every piece of both models, <pad> last), trained on the fixture's two languages by the
    same code as train-marian's. Returns the MarianTokenizer."""
    return write_tokenizer(
        folder,
        fixture_lines(source),
        fixture_lines(target),
        MarianRecipe(spm_vocab_size=vocab_size),
        f"{source}-{target}",
    )


def write_bart_tokenizer(folder: Path, *, vocab_size: int = 600) -> Any:
    """Byte-level BPE (vocab.json + merges.txt) with BART's special tokens; returns the
    BartTokenizer that transformers loads from them."""
    from transformers import BartTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [*fixture_lines("en"), *fixture_lines("fr")],
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    bpe.save_model(str(folder))
    tokenizer = BartTokenizer.from_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _randomise_head(model: Any, tokenizer: Any, ended: float, seed: int) -> None:
    """A varied final_logits_bias, with EOS raised so that about `ended` of the fixture
    sources end by EOS within 16 greedy steps and the rest at the length cap.

    A random model's EOS logit trails the best one by a margin that changes little from
    step to step but much from source to source; the bias is set from the quantile of each
    source's smallest margin (steps a processor forces left out).
    """
    generator = torch.Generator().manual_seed(seed)
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        bias = model.final_logits_bias
        bias.copy_(torch.randn(bias.shape, generator=generator) * INIT_STD)
        bias[0, eos] = -1e4  # measure the margins on full-length outputs
        batch = tokenizer(list(fixture_lines("en")[:64]), padding=True, return_tensors="pt")
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


def make_marian(folder: Path, *, seed: int = 0, ended: float = 0.4, **config: Any) -> Path:
    """A random-weight MarianMTModel + its tokenizer, saved; `config` overrides the shape."""
    from transformers import MarianConfig, MarianMTModel

    tokenizer = write_marian_tokenizer(folder)
    pad = tokenizer.pad_token_id
    fields: dict[str, Any] = {
        "vocab_size": tokenizer.vocab_size,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 1,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 48,
        "max_position_embeddings": 128,
        "activation_function": "swish",
        "scale_embedding": True,
        "pad_token_id": pad,
        "decoder_start_token_id": pad,
        "eos_token_id": tokenizer.eos_token_id,
        "init_std": INIT_STD,
    }
    torch.manual_seed(seed)
    model = MarianMTModel(MarianConfig(**(fields | config)))
    model.generation_config.bad_words_ids = [[pad]]  # as every OPUS-MT checkpoint has it
    _randomise_head(model, tokenizer, ended, seed)
    model.save_pretrained(folder)
    return folder


def make_bart(
    folder: Path, *, mbart: bool = False, seed: int = 0, ended: float = 0.4, **config: Any
) -> Path:
    """A random-weight BART (or mBART: pre-norm) + a byte-level BPE tokenizer, saved, with
    `<s>` as the forced first token."""
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        MBartConfig,
        MBartForConditionalGeneration,
    )

    tokenizer = write_bart_tokenizer(folder)
    fields: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "d_model": 32,
        "encoder_layers": 1,
        "decoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 48,
        "max_position_embeddings": 128,
        "scale_embedding": mbart,
        "init_std": INIT_STD,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "decoder_start_token_id": tokenizer.eos_token_id,
    }
    config_class, model_class = (
        (MBartConfig, MBartForConditionalGeneration)
        if mbart
        else (BartConfig, BartForConditionalGeneration)
    )
    torch.manual_seed(seed)
    model = model_class(config_class(**(fields | config)))
    model.generation_config.forced_bos_token_id = tokenizer.bos_token_id
    _randomise_head(model, tokenizer, ended, seed)
    model.save_pretrained(folder)
    return folder
