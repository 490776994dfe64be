"""Hugging Face `generate()` as the reference our bundles must reproduce: token ids per
source, EOS and padding removed, in the form the engine reports them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def generated_ids(
    model: Any,
    sources: Sequence[Sequence[int]],
    *,
    pad_id: int,
    eos_id: int,
    batch_size: int = 16,
    **generate: Any,
) -> list[tuple[int, ...]]:
    """`model.generate(...)` over `sources` (ids, EOS last), in batches padded with `pad_id`;
    each result without the decoder's start token, cut before the first EOS."""
    results: list[tuple[int, ...]] = []
    for start in range(0, len(sources), batch_size):
        chunk = sources[start : start + batch_size]
        longest = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), longest), dtype=torch.long)
        for row, source in enumerate(chunk):
            ids[row, : len(source)] = torch.tensor(list(source))
            mask[row, : len(source)] = 1
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **generate)
        for row in out[:, 1:].tolist():
            results.append(tuple(row[: row.index(eos_id)] if eos_id in row else row))
    return results
