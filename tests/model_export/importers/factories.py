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
from model_export.importers.synthetic import randomise_head
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
    randomise_head(model, tokenizer, fixture_lines("en")[:64], ended=ended, std=INIT_STD, seed=seed)
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
    randomise_head(model, tokenizer, fixture_lines("en")[:64], ended=ended, std=INIT_STD, seed=seed)
    model.save_pretrained(folder)
    return folder
