"""The one preparation path from a source to a Request: the offline API and the serving data
plane both take it, so both check the same limits, encode the same way, build the same
constraints and refuse the same input with the same INVALID_ARGUMENT naming the field.

    limits -> DecodingParams.for_model -> encode_source -> new_request -> (engine) ->
    output_text.decode_output
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from service.bundle import BundleManifest
from service.engine.constraint_builder import build_constraints
from service.engine.requests import Request, RequestListener
from service.engine.tokenizer import Tokenizer
from service.params import DecodingParams, ModelLimits


class TokenizedModel(Protocol):
    """What preparing a request reads of a model (a LoadedBundle or a ServedBundle)."""

    @property
    def manifest(self) -> BundleManifest: ...

    @property
    def tokenizer(self) -> Tokenizer: ...


@dataclass(frozen=True)
class Source:
    """A source as the model sees it."""

    ids: np.ndarray  # (S,) int64, EOS last
    tokens: tuple[str, ...]  # the pieces, same length as ids (() when given as ids)
    text: str | None  # the text it came from (None when given as ids)

    @property
    def length(self) -> int:
        return int(self.ids.shape[0])


def model_limits(
    manifest: BundleManifest, *, max_beam_size: int, max_batch_size: int
) -> ModelLimits:
    """What a model and the server allow a request (`DecodingParams.for_model` checks it)."""
    return ModelLimits(
        max_output_tokens=manifest.max_target_length,
        max_beam_size=max_beam_size,
        max_batch_size=max_batch_size,
        has_attention=manifest.attention.kind != "none",
        defaults=manifest.decoding,
    )


def encode_text(model: TokenizedModel, text: str) -> Source:
    """`text` encoded whatever its length (`fits` says whether the model takes it)."""
    encoded = model.tokenizer.encode(text, max_tokens=sys.maxsize, field="text")
    return Source(np.asarray(encoded.ids, dtype=np.int64), encoded.tokens, text)


def fits(model: TokenizedModel, source: Source) -> bool:
    return source.length <= model.manifest.max_source_length


def encode_source(model: TokenizedModel, text: str, field: str) -> Source:
    """`text` encoded, EOS last; over the model's source limit it is refused naming `field`."""
    encoded = model.tokenizer.encode(text, max_tokens=model.manifest.max_source_length, field=field)
    return Source(np.asarray(encoded.ids, dtype=np.int64), encoded.tokens, text)


def source_of_ids(ids: Sequence[int]) -> Source:
    """A source given as token ids (EOS last), taken as they are."""
    return Source(np.asarray([int(i) for i in ids], dtype=np.int64), (), None)


def new_request(
    model: TokenizedModel,
    source: Source,
    params: DecodingParams,
    *,
    request_id: str,
    listener: RequestListener,
    arrival: float,
    deadline: float | None = None,
) -> Request:
    """The engine's request for `source`, its constraints built from `params` (resolved for
    the model by `for_model`); raises InvalidArgument naming the option that cannot apply."""
    constraints = build_constraints(
        params,
        source_ids=source.ids,
        source_text=source.text,
        tokenizer=model.tokenizer,
        manifest=model.manifest,
    )
    return Request(
        request_id=request_id,
        source_ids=source.ids,
        params=params,
        listener=listener,
        deadline=deadline,
        arrival=arrival,
        constraints=constraints.constraints,
        terms=constraints.terms,
    )
