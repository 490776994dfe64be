"""A Marian NMT model folder as translateLocally, Bergamot and Firefox lay them out.

    model.<src><trg>.intgemm.alphas.bin   (or model*.bin / model*.npz, optionally .gz)
    vocab.<src><trg>.spm                   one SentencePiece model for both sides, or
    srcvocab.<src><trg>.spm, trgvocab...   one per side
    lex.50.50.<src><trg>.s2t.bin           a binary lexical shortlist (optional)
    config*.yml / decoder.yml              Marian's decoder options (optional): `models`,
                                           `vocabs`, `shortlist`, `max-length-factor`, ...

A decoder config, when the folder has one, names the files; otherwise they are found by
these patterns. The model file's own config (`special:model.yml`) is the source of truth
for the architecture; the decoder config only for how to decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model_export.importers.checkpoint import ImportCheckpointError

MODEL_PATTERNS = ("model*.bin", "model*.npz", "model*.bin.gz", "model*.npz.gz")
SHORTLIST_PATTERNS = ("lex*.s2t.bin", "lex*.s2t.bin.gz")
DEFAULT_LENGTH_FACTOR = 3.0  # marian-decoder's --max-length-factor


@dataclass(frozen=True)
class MarianFolder:
    folder: Path
    model: Path
    source_vocab: Path
    target_vocab: Path
    shortlist: Path | None
    decoder_config: dict[str, Any]  # the folder's decoder options ({} without a config file)
    config_file: Path | None
    languages: tuple[str, str] | None  # from the file names (model.enpt.* -> en, pt)

    @property
    def shared_vocab(self) -> bool:
        return self.source_vocab == self.target_vocab

    @property
    def length_factor(self) -> float:
        return float(self.decoder_config.get("max-length-factor", DEFAULT_LENGTH_FACTOR))

    @property
    def normalize(self) -> float:
        """Length normalisation of beam scores (Marian's --normalize)."""
        return float(self.decoder_config.get("normalize", 0.0) or 0.0)


def _matches(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})


def looks_like_marian(folder: Path) -> bool:
    """A folder with a Marian model file and no Hugging Face config.json."""
    return (
        Path(folder).is_dir()
        and not (Path(folder) / "config.json").is_file()
        and bool(_matches(Path(folder), MODEL_PATTERNS))
    )


def _decoder_config(folder: Path) -> tuple[dict[str, Any], Path | None]:
    """The first *.yml of the folder that names `models` (a Marian decoder config)."""
    for path in sorted(folder.glob("*.yml")):
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ImportCheckpointError(f"{path}: not a readable YAML file: {exc}") from exc
        if isinstance(config, dict) and config.get("models"):
            return config, path
    return {}, None


def _one(folder: Path, patterns: tuple[str, ...], what: str, *, required: bool) -> Path | None:
    found = _matches(folder, patterns)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ImportCheckpointError(f"{folder}: holds several {what} ({names}); keep one")
    if not found and required:
        raise ImportCheckpointError(f"{folder}: has no {what} ({' or '.join(patterns)})")
    return found[0] if found else None


def _named(folder: Path, config_file: Path, value: Any, option: str) -> Path:
    path = folder / str(value)
    if not path.is_file():
        raise ImportCheckpointError(f"{config_file}: {option} names {value!r}, which is missing")
    return path


def _languages(model: Path) -> tuple[str, str] | None:
    """'model.enpt.intgemm.alphas.bin' -> ('en', 'pt')."""
    match = re.match(r"model\.([a-z]{2})([a-z]{2})\.", model.name)
    return (match.group(1), match.group(2)) if match else None


def _vocabularies(
    folder: Path, config: dict[str, Any], config_file: Path | None
) -> tuple[Path, Path]:
    if config_file is not None and config.get("vocabs"):
        vocabs = [_named(folder, config_file, v, "vocabs") for v in config["vocabs"]]
        if len(vocabs) != 2:
            raise ImportCheckpointError(f"{config_file}: vocabs names {len(vocabs)} files, not 2")
        source, target = vocabs
    else:
        shared = _one(
            folder,
            ("vocab.*.spm", "vocab.spm"),
            "shared SentencePiece vocabularies",
            required=False,
        )
        if shared is not None:
            source = target = shared
        else:
            found_source = _one(folder, ("srcvocab*.spm",), "source vocabularies", required=True)
            found_target = _one(folder, ("trgvocab*.spm",), "target vocabularies", required=True)
            assert found_source is not None and found_target is not None
            source, target = found_source, found_target
    for path in (source, target):
        if path.suffix != ".spm":
            raise ImportCheckpointError(
                f"{path}: a Marian word vocabulary ({path.suffix}) applies its subword "
                "segmentation outside Marian; only SentencePiece vocabularies (.spm) can be "
                "imported"
            )
    return source, target


def read_folder(folder: Path) -> MarianFolder:
    """Find the model, vocabularies and shortlist of a Marian folder, or refuse in one line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportCheckpointError(f"{folder}: not a folder")
    config, config_file = _decoder_config(folder)
    if config_file is not None:
        models = config["models"]
        models = models if isinstance(models, list) else [models]
        if len(models) != 1:
            raise ImportCheckpointError(
                f"{config_file}: models names {len(models)} files; an ensemble cannot be imported"
            )
        model = _named(folder, config_file, models[0], "models")
    else:
        found = _one(folder, MODEL_PATTERNS, "Marian model files", required=True)
        assert found is not None
        model = found
    source_vocab, target_vocab = _vocabularies(folder, config, config_file)
    shortlist: Path | None
    listed = config.get("shortlist") if config_file is not None else None
    if listed:
        shortlist = _named(
            folder, config_file, listed[0] if isinstance(listed, list) else listed, "shortlist"
        )  # type: ignore[arg-type]
    else:
        shortlist = _one(folder, SHORTLIST_PATTERNS, "lexical shortlists", required=False)
    return MarianFolder(
        folder=folder,
        model=model,
        source_vocab=source_vocab,
        target_vocab=target_vocab,
        shortlist=shortlist,
        decoder_config=config,
        config_file=config_file,
        languages=_languages(model),
    )  # fmt: skip
