"""Marian (OPUS-MT): post-norm layers, token embeddings scaled by sqrt(d_model) (when the
config says so), HF's own sinusoid table (sin in the first half, cos in the second, looked
up at each row's position), swish, `final_logits_bias`, pad as the decoder's start token and
never generated. Tokenizer: two SentencePiece models and `vocab.json`, copied as they are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor, nn

from model_export.importers.checkpoint import Checkpoint, ImportCheckpointError, require_files
from model_export.importers.family import BundleTokenizer
from model_export.importers.rules import ImportedRules
from model_export.importers.stack import StackParts

SOURCE_SPM, TARGET_SPM, VOCAB = "source.spm", "target.spm", "vocab.json"


class MarianEmbedding(nn.Module):
    """ids (B, T), positions (B, T) -> tokens * scale + sinusoid[positions] (B, T, H)."""

    def __init__(self, tokens: nn.Embedding, scale: float, table: Tensor) -> None:
        super().__init__()
        self.tokens = tokens
        self.scale = scale
        self.table = table  # (max_positions, H): the checkpoint's positional embedding

    def forward(self, ids: Tensor, positions: Tensor) -> Tensor:
        return self.tokens(ids) * self.scale + nn.functional.embedding(positions, self.table)


def _token_text(config: dict[str, Any], name: str, default: str) -> str:
    value = config.get(name, default)
    return str(value.get("content", default)) if isinstance(value, dict) else str(value)


def _read_vocab(path: Path) -> dict[str, int]:
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
        return {str(piece): int(i) for piece, i in vocab.items()}
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ImportCheckpointError(f"{path}: not a JSON object of piece -> id: {exc}") from exc


class MarianFamily:
    name = "marian"
    model_types: ClassVar[dict[str, str]] = {"marian": "MarianMTModel"}

    def write_tokenizer(self, checkpoint: Checkpoint, bundle_dir: Path) -> BundleTokenizer:
        folder = checkpoint.folder
        config = checkpoint.tokenizer_config
        if config.get("separate_vocabs"):
            raise ImportCheckpointError(
                f"{folder / 'tokenizer_config.json'}: separate source and target vocabularies "
                "(separate_vocabs) are not supported"
            )
        require_files(folder, (SOURCE_SPM, TARGET_SPM, VOCAB), "Marian's tokenizer")
        vocab = _read_vocab(folder / VOCAB)
        eos, unk, pad = (
            _token_text(config, "eos_token", "</s>"),
            _token_text(config, "unk_token", "<unk>"),
            _token_text(config, "pad_token", "<pad>"),
        )
        missing = [t for t in (eos, unk, pad) if t not in vocab]
        if missing:
            raise ImportCheckpointError(f"{folder / VOCAB}: has no entry for {missing}")
        for name in (SOURCE_SPM, TARGET_SPM, VOCAB):
            shutil.copy2(folder / name, bundle_dir / name)
        return BundleTokenizer(
            spec={
                "kind": "sentencepiece",
                "source_model": SOURCE_SPM,
                "target_model": TARGET_SPM,
                "vocab": VOCAB,
                "special_tokens": [eos, unk, pad],
            },
            vocab_size=max(vocab.values()) + 1,
            pad_id=vocab[pad],
            eos_id=vocab[eos],
            unk_id=vocab[unk],
        )

    def stack_parts(self, model: Any, rules: ImportedRules) -> StackParts:
        encoder, decoder = model.model.encoder, model.model.decoder
        return StackParts(
            embed_source=MarianEmbedding(
                encoder.embed_tokens, float(encoder.embed_scale), encoder.embed_positions.weight
            ),
            embed_target=MarianEmbedding(
                decoder.embed_tokens, float(decoder.embed_scale), decoder.embed_positions.weight
            ),
            encoder_layers=encoder.layers,
            decoder_layers=decoder.layers,
            pre_norm=False,
            encoder_norm=None,
            decoder_norm=None,
            lm_head=model.lm_head,
            logits_bias=model.final_logits_bias[0],
            suppressed_ids=rules.suppressed_ids,
            forced_bos_id=rules.forced_bos_id,
        )

    def max_positions(self, model: Any) -> int:
        return int(model.model.decoder.embed_positions.weight.shape[0])

    def reference_tokenizer(self, folder: Path) -> Any:
        from transformers import MarianTokenizer

        return MarianTokenizer.from_pretrained(folder)
