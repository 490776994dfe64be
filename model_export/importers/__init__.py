"""Import local Hugging Face checkpoints as bundles (`seq2seq-export import`).

One family per architecture the importer understands; a checkpoint's config `model_type`
picks it. The families' modules wrap the checkpoint's own torch modules in step-wise
encoder / decoder modules (`stack.py`) that export to the bundle's two graphs.
"""

from __future__ import annotations

from model_export.importers.bart import BartFamily
from model_export.importers.checkpoint import ImportCheckpointError
from model_export.importers.family import Family
from model_export.importers.marian import MarianFamily

FAMILIES: tuple[Family, ...] = (MarianFamily(), BartFamily())


def family_for(model_type: str) -> Family | None:
    return next((f for f in FAMILIES if model_type in f.model_types), None)


def supported() -> str:
    """'marian (MarianMTModel), bart (BartForConditionalGeneration), ...' for messages."""
    return ", ".join(f"{t} ({cls})" for f in FAMILIES for t, cls in f.model_types.items())


__all__ = ["FAMILIES", "ImportCheckpointError", "family_for", "supported"]
