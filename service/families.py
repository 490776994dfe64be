"""The model families a bundle may name as its `architecture`: the one list of names.

It imports nothing, so the bundle contract (service/bundle.py) can use it and stay free of
torch. A family trained by model_export maps its name to its model class and config checks
in `model_export/families.py`; an imported family (a converted checkpoint) is its name here
plus its importer. Adding a family is one entry in `Family`.
"""

from __future__ import annotations

from typing import Literal, get_args

# marian, bart: imported Hugging Face checkpoints; marian_nmt: Marian NMT's own model folders
Family = Literal["rnn", "transformer", "marian", "bart", "marian_nmt"]
FAMILIES: tuple[str, ...] = get_args(Family)
