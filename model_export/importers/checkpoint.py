"""A local Hugging Face checkpoint folder: what it must hold, read without side effects.

Every refusal is an `ImportCheckpointError` whose message starts with the file at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.bundle import sha256_file

CONFIG_FILE = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class ImportCheckpointError(ValueError):
    """The folder cannot be imported; the message names the file and the problem."""


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    config: dict[str, Any]  # config.json
    tokenizer_config: dict[str, Any]  # tokenizer_config.json, {} when absent
    generation: dict[str, Any]  # generation_config.json, {} when absent
    weights: Path  # the weights file (or its shard index)

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architecture(self) -> str:
        """The config's model class, e.g. MarianMTModel."""
        names = self.config.get("architectures") or []
        return str(names[0]) if names else ""


def _read_json(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise ImportCheckpointError(
                f"{path}: missing; not a Hugging Face checkpoint folder (save_pretrained "
                "writes config.json beside the weights)"
            )
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportCheckpointError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ImportCheckpointError(f"{path}: not a JSON object")
    return value


def read_checkpoint(folder: Path) -> Checkpoint:
    """The folder's config and the presence of its weights; nothing is loaded yet."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportCheckpointError(f"{folder}: not a folder")
    config = _read_json(folder / CONFIG_FILE, required=True)
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise ImportCheckpointError(
            f"{folder / WEIGHT_FILES[0]}: missing; the folder has no weights "
            f"({', '.join(WEIGHT_FILES)})"
        )
    return Checkpoint(
        folder=folder,
        config=config,
        tokenizer_config=_read_json(folder / "tokenizer_config.json", required=False),
        generation=_read_json(folder / "generation_config.json", required=False),
        weights=weights,
    )


def require_files(folder: Path, names: tuple[str, ...], what: str) -> None:
    for name in names:
        if not (folder / name).is_file():
            raise ImportCheckpointError(
                f"{folder / name}: missing; {what} needs {', '.join(names)}"
            )


def source_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of the checkpoint folder (top level), by name."""
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _key(entry: Any) -> str:
    """A loading-info entry: a key, or (key, shape in the file, shape the config wants)."""
    if isinstance(entry, tuple) and len(entry) == 3:
        return f"{entry[0]} {tuple(entry[1])} in the file, {tuple(entry[2])} by the config"
    return str(entry)


def load_model(checkpoint: Checkpoint, model_class: type) -> Any:
    """The model in eval mode, float32; refuses weights that do not match the config."""
    try:
        model, info = model_class.from_pretrained(
            checkpoint.folder,
            output_loading_info=True,
            dtype="float32",
            ignore_mismatched_sizes=True,  # reported below, naming the tensors
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ImportCheckpointError(
            f"{checkpoint.weights}: cannot be loaded as {model_class.__name__}: "
            + str(exc).splitlines()[0]
        ) from exc
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        found = list(info.get(kind) or [])
        if found:
            shown = ", ".join(_key(k) for k in found[:3]) + (" ..." if len(found) > 3 else "")
            problems.append(f"{kind.replace('_', ' ')}: {shown}")
    if problems:
        raise ImportCheckpointError(
            f"{checkpoint.weights}: the weights do not match {CONFIG_FILE}: " + "; ".join(problems)
        )
    return model.eval()
