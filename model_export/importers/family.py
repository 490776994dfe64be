"""What each importable checkpoint family provides to the importer (`FAMILIES` in
`model_export.importers`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from model_export.importers.checkpoint import Checkpoint
from model_export.importers.rules import ImportedRules
from model_export.importers.stack import StackParts


@dataclass(frozen=True)
class BundleTokenizer:
    """The tokenizer as written into the bundle."""

    spec: dict[str, object]  # the manifest's `tokenizer` fields
    vocab_size: int  # ids it can produce: one past the largest
    pad_id: int
    eos_id: int
    unk_id: int


class Family(Protocol):
    name: str  # the manifest's architecture, e.g. "marian"
    model_types: dict[str, str]  # config model_type -> the transformers class that loads it

    def write_tokenizer(self, checkpoint: Checkpoint, bundle_dir: Path) -> BundleTokenizer:
        """Check the checkpoint's tokenizer files and write them into the bundle folder."""
        ...

    def stack_parts(self, model: Any, rules: ImportedRules) -> StackParts: ...

    def max_positions(self, model: Any) -> int:
        """The longest sequence the checkpoint can embed (its position table)."""
        ...

    def reference_tokenizer(self, folder: Path) -> Any:
        """The checkpoint's own transformers tokenizer, to check ours against."""
        ...
