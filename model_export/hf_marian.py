"""A small Marian checkpoint trained with Hugging Face's own code on our Debian data.

No model hub is reachable, so the importer's real-world check is a checkpoint made here the
way OPUS-MT ships them: two SentencePiece models (trained on the training split only) with
a joint `vocab.json` (`</s>` 0, `<unk>` 1, `<pad>` last), a `MarianMTModel` trained by a
plain loop over its forward pass (AdamW, warm-up then inverse square root, label smoothing,
the best validation loss kept), and `save_pretrained` of model and `MarianTokenizer`, with
OPUS-MT's generation settings (pad never generated, beam 4).

    seq2seq-export train-marian --data data/prepared --languages en-fr \\
        --out runs/marian-en-fr
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from model_export import data as prepared
from model_export.train import Example, collate, make_batches, sequence_loss


@dataclass(frozen=True)
class MarianRecipe:
    """The shape and the fitting of the checkpoint; every number with its unit."""

    spm_vocab_size: int = 4000  # pieces per SentencePiece model (source, target)
    d_model: int = 256
    layers: int = 2  # per stack
    heads: int = 4
    ffn_size: int = 1024
    dropout: float = 0.1
    max_length: int = 128  # tokens per side, EOS included; longer pairs are cut
    batch_sentences: int = 64
    batch_tokens: int = 3000  # padded source + target tokens per batch at most
    lr: float = 1e-3  # AdamW peak learning rate
    warmup_steps: int = 300
    max_steps: int = 1600  # optimizer steps (about 1.7 CPU-seconds each at 2 threads)
    label_smoothing: float = 0.1
    eval_every: int = 250  # steps between validation losses
    valid_examples: int = 1000
    seed: int = 1234


def train_sentencepiece(texts: list[str] | tuple[str, ...], path: Path, vocab_size: int) -> None:
    """A unigram SentencePiece model at `path` (Marian's .spm): <unk> 0, no BOS/EOS/pad."""
    import sentencepiece

    prefix = path.with_suffix("")
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        pad_id=-1,
        minloglevel=2,
    )
    prefix.with_suffix(".model").rename(path)
    prefix.with_suffix(".vocab").unlink()


def write_tokenizer(
    out: Path,
    sources: list[str] | tuple[str, ...],
    targets: list[str] | tuple[str, ...],
    recipe: MarianRecipe,
    languages: str,
):
    """source.spm, target.spm, joint vocab.json and the MarianTokenizer saved beside them."""
    import sentencepiece
    from transformers import MarianTokenizer

    out.mkdir(parents=True, exist_ok=True)
    pieces: list[str] = []
    for side, texts in (("source", sources), ("target", targets)):
        train_sentencepiece(texts, out / f"{side}.spm", recipe.spm_vocab_size)
        model = sentencepiece.SentencePieceProcessor(model_file=str(out / f"{side}.spm"))
        pieces += [model.id_to_piece(i) for i in range(model.get_piece_size())]
    vocab = {p: i for i, p in enumerate(dict.fromkeys(["</s>", "<unk>", *pieces, "<pad>"]))}
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = MarianTokenizer(
        source_spm=str(out / "source.spm"),
        target_spm=str(out / "target.spm"),
        vocab=str(out / "vocab.json"),
        source_lang=languages.partition("-")[0],
        target_lang=languages.partition("-")[2],
        model_max_length=recipe.max_length,
    )
    tokenizer.save_pretrained(out)
    return tokenizer


def _examples(tokenizer, records: list[dict], limit: int) -> list[Example]:
    sources = tokenizer([r["source"] for r in records])["input_ids"]
    targets = tokenizer(text_target=[r["target"] for r in records])["input_ids"]
    eos = tokenizer.eos_token_id
    return [
        Example(src=[*s[: limit - 1], eos], tgt=[*t[: limit - 1], eos])
        for s, t in zip(sources, targets, strict=True)
    ]


def _loss(model, batch, pad_id: int, smoothing: float) -> torch.Tensor:
    logits = model(
        input_ids=batch.src_ids,
        attention_mask=(batch.src_ids != pad_id).long(),
        decoder_input_ids=batch.tgt_in,
    ).logits
    return sequence_loss(
        torch.log_softmax(logits.float(), dim=-1), batch.tgt_out, pad_id=pad_id, smoothing=smoothing
    )


def _save(model, out: Path, pad: int) -> None:
    """save_pretrained with OPUS-MT's generation settings (pad never generated, beam 4)."""
    was_training = model.training
    model.eval()
    model.generation_config.bad_words_ids = [[pad]]
    model.generation_config.num_beams = 4
    model.generation_config.max_length = 256
    model.save_pretrained(out)
    model.train(was_training)


def train_marian(
    data_dir: Path,
    out: Path,
    *,
    languages: str = "en-fr",
    minutes: float = 60.0,
    threads: int = 2,
    recipe: MarianRecipe | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Train and save the checkpoint into `out`; returns the run's summary (also written
    to `out/training.json`)."""
    from transformers import MarianConfig, MarianMTModel

    recipe = recipe or MarianRecipe()
    started = time.monotonic()
    torch.set_num_threads(threads)
    random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    dataset = f"translate-{languages}"
    train_records = prepared.load_split(data_dir, dataset, "train")
    valid_records = prepared.load_split(data_dir, dataset, "valid")[: recipe.valid_examples]
    source, _, target = languages.partition("-")
    log(f"[1/3] tokenizer: SentencePiece x2, {recipe.spm_vocab_size} pieces, training split")
    if all((out / n).is_file() for n in ("source.spm", "target.spm", "vocab.json")):
        from transformers import MarianTokenizer

        log("      (reusing the SentencePiece models and vocab.json already in the folder)")
        tokenizer = MarianTokenizer.from_pretrained(out)
    else:
        tokenizer = write_tokenizer(
            out,
            [r["source"] for r in train_records],
            [r["target"] for r in train_records],
            recipe,
            languages,
        )
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    train_set = _examples(tokenizer, train_records, recipe.max_length)
    valid_set = _examples(tokenizer, valid_records, recipe.max_length)
    config = MarianConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=recipe.d_model,
        encoder_layers=recipe.layers,
        decoder_layers=recipe.layers,
        encoder_attention_heads=recipe.heads,
        decoder_attention_heads=recipe.heads,
        encoder_ffn_dim=recipe.ffn_size,
        decoder_ffn_dim=recipe.ffn_size,
        max_position_embeddings=max(256, recipe.max_length),
        activation_function="swish",
        scale_embedding=True,
        dropout=recipe.dropout,
        pad_token_id=pad,
        eos_token_id=eos,
        decoder_start_token_id=pad,
        forced_eos_token_id=eos,
    )
    model = MarianMTModel(config)
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"[2/3] train: {parameters:,} parameters, {len(train_set)} pairs, "
        f"{recipe.max_steps} steps (at most {minutes} min)"
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.01
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(
            (step + 1) / recipe.warmup_steps, math.sqrt(recipe.warmup_steps / (step + 1))
        ),
    )
    batches = make_batches(
        train_set, batch_tokens=recipe.batch_tokens, batch_sentences=recipe.batch_sentences
    )
    valid_batches = make_batches(
        valid_set, batch_tokens=recipe.batch_tokens, batch_sentences=recipe.batch_sentences
    )

    def valid_loss() -> float:
        model.eval()
        total, tokens = 0.0, 0
        with torch.no_grad():
            for indices in valid_batches:
                batch = collate([valid_set[i] for i in indices], pad_id=pad, bos_id=pad)
                count = int((batch.tgt_out != pad).sum())
                total += float(_loss(model, batch, pad, 0.0)) * count
                tokens += count
        model.train()
        return total / tokens

    deadline = started + minutes * 60  # a cap: the recipe's max_steps is the budget
    cpu_started = time.process_time()
    best = (math.inf, 0)
    best_state: dict[str, torch.Tensor] = {}
    history: list[dict[str, float]] = []
    step, epoch = 0, 0
    model.train()
    while time.monotonic() < deadline and step < recipe.max_steps:
        order = list(range(len(batches)))
        random.shuffle(order)
        for index in order:
            batch = collate([train_set[i] for i in batches[index]], pad_id=pad, bos_id=pad)
            loss = _loss(model, batch, pad, recipe.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step % recipe.eval_every == 0:
                current = valid_loss()
                history.append(
                    {"step": step, "train_loss": float(loss.detach()), "valid_loss": current}
                )
                log(f"      step {step}: train {float(loss):.3f}, valid {current:.3f}")
                if current < best[0]:
                    best = (current, step)
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    _save(model, out, pad)  # a killed run still leaves its best so far
            if time.monotonic() >= deadline or step >= recipe.max_steps:
                break
        epoch += 1
    if best_state:
        model.load_state_dict(best_state)
    log(f"[3/3] save_pretrained -> {out}")
    _save(model, out, pad)
    summary: dict[str, object] = {
        "languages": languages,
        "source_language": source,
        "target_language": target,
        "recipe": recipe.__dict__,
        "parameters": parameters,
        "steps": step,
        "epochs_started": epoch,
        "best_valid_loss": round(best[0], 4),
        "best_step": best[1],
        "seconds": round(time.monotonic() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),  # all threads, the loop
        "threads": threads,
        "history": history,
        "dataset_sha256": prepared.dataset_sha256(data_dir),
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
