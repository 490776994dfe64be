"""DecodingParams' text-level options -> the per-request constraints the engine applies.

Shared by the data plane and the offline API, so both refuse the same bad input with the
same INVALID_ARGUMENT naming the field, and build the same constraints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.bundle import BundleManifest
from service.engine.constraints import (
    Constraint,
    ExtractiveSpan,
    ForcedPrefix,
    RequiredTerms,
    Term,
)
from service.engine.tokenizer import Tokenizer
from service.errors import InvalidArgument
from service.params import DecodingParams


@dataclass(frozen=True)
class RequestConstraints:
    constraints: tuple[Constraint, ...] = ()  # the initial state of every row's constraints
    terms: tuple[Term, ...] = ()  # required terms, for rendering them verbatim


def extractive_by_default(manifest: BundleManifest) -> bool:
    """The manifest's choice; without one, on for answer models (they have a context)."""
    chosen = manifest.decoding.extractive
    return chosen if chosen is not None else manifest.task == "answer"


def context_ids(source_ids: np.ndarray, manifest: BundleManifest) -> np.ndarray | None:
    """The context part of an answer source (after the separator, EOS dropped), or None."""
    sep = manifest.special_tokens.sep_id
    if sep is None:
        return None
    found = np.flatnonzero(source_ids == sep)
    if found.size == 0:
        return None
    context = source_ids[found[0] + 1 :]
    return context[context != manifest.special_tokens.eos_id]


def _encode(tokenizer: Tokenizer, text: str, field: str) -> tuple[int, ...]:
    ids = tokenizer.encode_plain(text)
    if not ids or tokenizer.unk_id in ids:
        raise InvalidArgument(
            f"{field} {text!r} cannot be spelt with the model's vocabulary", field=field
        )
    return ids


def _occurrences(text: str, term: str) -> list[int]:
    found, start = [], text.find(term)
    while start >= 0:
        found.append(start)
        start = text.find(term, start + 1)
    return found


def _source_spans(source_text: str, params: DecodingParams) -> list[tuple[int, int]]:
    """Where each protected or glossary source term occurs in the source (protected terms
    first, then the glossary's, as character spans). Longer terms pick their occurrence
    first and shorter ones take one outside them ("x2go" beside "plasma-widget-x2go");
    a term that occurs nowhere, or only inside another, is refused."""
    named = [(f"options.protected_terms[{i}]", t) for i, t in enumerate(params.protected_terms)]
    named += [(f"options.glossary[{s!r}]", s) for s, _ in params.glossary]
    chosen: dict[int, tuple[int, int, str]] = {}
    for index in sorted(range(len(named)), key=lambda i: -len(named[i][1])):
        field, term = named[index]
        starts = _occurrences(source_text, term)
        if not starts:
            raise InvalidArgument(f"{field} {term!r} does not occur in the text", field=field)
        for start in starts:
            clash = [c for c in chosen.values() if start < c[1] and c[0] < start + len(term)]
            if not clash:
                chosen[index] = (start, start + len(term), field)
                break
        else:
            raise InvalidArgument(f"{field} overlaps {clash[0][2]} in the text", field=field)
    return [chosen[i][:2] for i in range(len(named))]


def build_constraints(
    params: DecodingParams,
    *,
    source_ids: np.ndarray,
    source_text: str | None,
    tokenizer: Tokenizer,
    manifest: BundleManifest,
) -> RequestConstraints:
    """Raises InvalidArgument naming the option when it cannot apply to this request."""
    special = manifest.special_tokens
    constraints: list[Constraint] = []
    if params.target_prefix:
        prefix = _encode(tokenizer, params.target_prefix, "options.target_prefix")
        if len(prefix) >= params.max_output_tokens:
            raise InvalidArgument(
                f"options.target_prefix is {len(prefix)} tokens; the output limit is "
                f"{params.max_output_tokens}",
                field="options.target_prefix",
            )
        constraints.append(ForcedPrefix(prefix))
    extractive = params.extractive
    if extractive is None:
        extractive = extractive_by_default(manifest)
    if extractive:
        context = context_ids(source_ids, manifest)
        if context is None or context.size == 0:
            if params.extractive:  # asked for explicitly
                raise InvalidArgument(
                    f"options.extractive: model '{manifest.name}' has no context part "
                    "(only answer models with a question/context separator do)",
                    field="options.extractive",
                )
        else:
            starts = np.array([tokenizer.starts_word(int(t)) for t in context], dtype=bool)
            starts[0] = True  # the context's first token begins its first word
            starts[context == tokenizer.unk_id] = True  # a span may end before an unknown
            constraints.append(
                ExtractiveSpan(
                    context, starts, special.eos_id, special.no_answer_id, tokenizer.unk_id
                )
            )
    terms: list[Term] = []
    if params.protected_terms or params.glossary:
        if source_text is None:
            raise InvalidArgument(
                "options.protected_terms need the source as text", field="options.protected_terms"
            )
        characters = _source_spans(source_text, params)
        pairs = [(t, t) for t in params.protected_terms] + list(params.glossary)
        for index, (_, target) in enumerate(pairs):
            field = (
                f"options.protected_terms[{index}]"
                if index < len(params.protected_terms)
                else "options.glossary"
            )
            terms.append((_encode(tokenizer, target, field), target))
        owed = sum(len(ids) for ids, _ in terms)
        if owed >= params.max_output_tokens:
            raise InvalidArgument(
                f"the required terms take {owed} tokens; the output limit is "
                f"{params.max_output_tokens}",
                field="options.protected_terms",
            )
        sources = tuple(tokenizer.token_span(source_text, a, b) for a, b in characters)
        constraints.append(
            RequiredTerms.start(
                tuple(ids for ids, _ in terms), sources, special.eos_id, params.max_output_tokens
            )
        )
    return RequestConstraints(tuple(constraints), tuple(terms))
