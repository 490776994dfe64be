"""BART and mBART: learned positions stored from row 2 on (HF's offset), a LayerNorm over
the embeddings, token embeddings that scale themselves, gelu, `final_logits_bias`, EOS as
the decoder's start token and usually a forced first token (BART's `<s>`, mBART-50's target
language code). BART's layers are post-norm; mBART's pre-norm with a final LayerNorm per
stack. Tokenizer: the checkpoint's `tokenizers` file (byte-level BPE for BART), whose own
template adds the special tokens (`<s> text </s>`; mBART: `text </s> en_XX`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor, nn

from model_export.importers.checkpoint import Checkpoint, ImportCheckpointError
from model_export.importers.family import BundleTokenizer
from model_export.importers.rules import ImportedRules
from model_export.importers.stack import StackParts
from service.bundle import TOKENIZER_FILE

# tokenizer.json, or what transformers converts into one
_TOKENIZER_SOURCES = {
    "bart": ((TOKENIZER_FILE,), ("vocab.json", "merges.txt")),
    "mbart": ((TOKENIZER_FILE,), ("sentencepiece.bpe.model",)),
}


class BartEmbedding(nn.Module):
    """ids (B, T), positions (B, T) -> LayerNorm(tokens + table[positions + offset])."""

    def __init__(self, tokens: nn.Module, positions: nn.Module, norm: nn.Module) -> None:
        super().__init__()
        self.tokens = tokens  # BartScaledWordEmbedding: multiplies by its embed_scale
        self.table = positions.weight  # (max_positions + offset, H)
        self.offset = int(positions.offset)
        self.norm = norm

    def forward(self, ids: Tensor, positions: Tensor) -> Tensor:
        x = self.tokens(ids) + nn.functional.embedding(positions + self.offset, self.table)
        return self.norm(x)


class BartFamily:
    name = "bart"
    model_types: ClassVar[dict[str, str]] = {
        "bart": "BartForConditionalGeneration",
        "mbart": "MBartForConditionalGeneration",
    }

    def write_tokenizer(self, checkpoint: Checkpoint, bundle_dir: Path) -> BundleTokenizer:
        folder = checkpoint.folder
        choices = _TOKENIZER_SOURCES[checkpoint.model_type]
        if not any(all((folder / n).is_file() for n in names) for names in choices):
            wanted = " or ".join(" + ".join(names) for names in choices)
            raise ImportCheckpointError(
                f"{folder / choices[0][0]}: missing; the tokenizer needs {wanted}"
            )
        reference = self.reference_tokenizer(folder)
        backend = getattr(reference, "backend_tokenizer", None)
        if backend is None:
            raise ImportCheckpointError(f"{folder / TOKENIZER_FILE}: not a `tokenizers` tokenizer")
        backend.save(str(bundle_dir / TOKENIZER_FILE))
        ids = [reference.pad_token_id, reference.eos_token_id, reference.unk_token_id]
        if None in ids:
            raise ImportCheckpointError(
                f"{folder / 'tokenizer_config.json'}: the tokenizer lacks a pad, eos or unk token"
            )
        return BundleTokenizer(
            spec={"kind": "tokenizers", "file": TOKENIZER_FILE, "post_processor": True},
            vocab_size=backend.get_vocab_size(with_added_tokens=True),
            pad_id=int(ids[0]),
            eos_id=int(ids[1]),
            unk_id=int(ids[2]),
        )

    def stack_parts(self, model: Any, rules: ImportedRules) -> StackParts:
        encoder, decoder = model.model.encoder, model.model.decoder
        pre_norm = model.config.model_type == "mbart"
        return StackParts(
            embed_source=BartEmbedding(
                encoder.embed_tokens, encoder.embed_positions, encoder.layernorm_embedding
            ),
            embed_target=BartEmbedding(
                decoder.embed_tokens, decoder.embed_positions, decoder.layernorm_embedding
            ),
            encoder_layers=encoder.layers,
            decoder_layers=decoder.layers,
            pre_norm=pre_norm,
            encoder_norm=encoder.layer_norm if pre_norm else None,
            decoder_norm=decoder.layer_norm if pre_norm else None,
            lm_head=model.lm_head,
            logits_bias=model.final_logits_bias[0],
            suppressed_ids=rules.suppressed_ids,
            forced_bos_id=rules.forced_bos_id,
        )

    def max_positions(self, model: Any) -> int:
        positions = model.model.decoder.embed_positions
        return int(positions.weight.shape[0] - positions.offset)

    def reference_tokenizer(self, folder: Path) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder)
