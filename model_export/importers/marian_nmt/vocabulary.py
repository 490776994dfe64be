"""A Marian folder's SentencePiece vocabularies as the bundle's `sentencepiece` tokenizer.

Marian's SentencePieceVocab uses the SentencePiece model's own ids (no vocab.yml between
them) and appends `</s>`; the bundle's tokenizer maps pieces to ids through `vocab.json`,
so that file is written from the model: piece -> its SentencePiece id.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from model_export.importers.checkpoint import ImportCheckpointError
from model_export.importers.family import BundleTokenizer
from model_export.importers.marian_nmt.folder import MarianFolder

EOS, UNK = "</s>", "<unk>"


@dataclass(frozen=True)
class SentencePieceSide:
    path: Path
    pieces: dict[str, int]  # piece -> id
    eos_id: int
    unk_id: int


def _read_side(path: Path, expected: int, side: str) -> SentencePieceSide:
    import sentencepiece

    try:
        model = sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as exc:
        raise ImportCheckpointError(f"{path}: not a SentencePiece model: {exc}") from exc
    size = model.get_piece_size()
    if size != expected:
        raise ImportCheckpointError(
            f"{path}: {size} pieces, but the model's dim-vocabs says {expected} for the {side}"
        )
    pieces = {model.id_to_piece(i): i for i in range(size)}
    missing = [t for t in (EOS, UNK) if t not in pieces]
    if missing:
        raise ImportCheckpointError(f"{path}: has no piece {' or '.join(missing)}")
    return SentencePieceSide(path, pieces, pieces[EOS], pieces[UNK])


def write_vocabularies(
    folder: MarianFolder, bundle_dir: Path, source_size: int, target_size: int
) -> BundleTokenizer:
    """Copy the SentencePiece model(s) and write vocab.json (and target_vocab.json)."""
    source = _read_side(folder.source_vocab, source_size, "source")
    target = (
        source if folder.shared_vocab else _read_side(folder.target_vocab, target_size, "target")
    )
    if source.eos_id != target.eos_id:
        raise ImportCheckpointError(
            f"{folder.target_vocab}: </s> is id {target.eos_id}, but {source.eos_id} in "
            f"{folder.source_vocab}"
        )
    spec: dict[str, object] = {"kind": "sentencepiece", "vocab": "vocab.json", "special_tokens": []}
    if folder.shared_vocab:
        shutil.copy2(folder.source_vocab, bundle_dir / "vocab.spm")
        spec |= {"source_model": "vocab.spm", "target_model": "vocab.spm"}
    else:
        shutil.copy2(folder.source_vocab, bundle_dir / "source.spm")
        shutil.copy2(folder.target_vocab, bundle_dir / "target.spm")
        spec |= {"source_model": "source.spm", "target_model": "target.spm"}
        spec["target_vocab"] = "target_vocab.json"
        _write_json(bundle_dir / "target_vocab.json", target.pieces)
    _write_json(bundle_dir / "vocab.json", source.pieces)
    return BundleTokenizer(
        spec=spec,
        vocab_size=max(source_size, target_size),
        pad_id=target.eos_id,  # Marian pads with </s> and masks the padding
        eos_id=target.eos_id,
        unk_id=target.unk_id,
    )


def _write_json(path: Path, pieces: dict[str, int]) -> None:
    path.write_text(json.dumps(pieces, ensure_ascii=False), encoding="utf-8")
