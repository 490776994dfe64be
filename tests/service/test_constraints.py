"""Constraints on made-up log-probabilities: extractive spans, prefixes, required terms,
under greedy, beam search and sampling (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine.constraints import (
    Constraint,
    ExtractiveSpan,
    ForcedPrefix,
    RequiredTerms,
    restrict_row,
)
from service.engine.strategies import SearchContext, StepView, make_search
from service.params import DecodingParams

EOS, NO_ANSWER, VOCAB = 0, 1, 12


def toy_log_probs(prefix: tuple[int, ...], salt: int) -> np.ndarray:
    rng = np.random.default_rng(abs(hash((prefix, salt))) % (2**32))
    logits = rng.normal(size=VOCAB) * 2.0
    logits[EOS] += 0.3 * len(prefix)
    return (logits - np.log(np.exp(logits).sum())).astype(np.float32)


def decode(constraints: tuple[Constraint, ...], salt: int, **options: object) -> list[tuple]:
    """Run a strategy over the toy model with the engine's per-row constraint handling."""
    params = DecodingParams(max_output_tokens=10, **options)  # type: ignore[arg-type]
    search = make_search(SearchContext(params=params, eos_id=EOS, source_length=3))
    prefixes: list[tuple[int, ...]] = [()]
    rows = [constraints]
    while not search.done:
        log_probs = np.stack([toy_log_probs(p, salt) for p in prefixes])
        for row, states in zip(log_probs, rows, strict=True):
            restrict_row(row, np.zeros(3, np.float32), states, EOS)
        best = log_probs.argmax(-1)
        advance = search.advance(
            StepView(log_probs, np.full((len(prefixes), 3), 1 / 3), best, log_probs.max(-1))
        )
        pairs = list(zip(advance.parents.tolist(), advance.next_ids.tolist(), strict=True))
        prefixes = [prefixes[p] + (t,) for p, t in pairs]
        rows = [tuple(c.after(t) for c in rows[p]) for p, t in pairs]
    return [h.token_ids for h in search.hypotheses()]


CONTEXT = np.array([5, 6, 7, 8, 5, 9, 10, 11], dtype=np.int64)
# Words: [5 6] [7] [8] [5 9] [10 11]: tokens 6, 9 and 11 continue a word.
WORD_START = np.array([1, 0, 1, 1, 1, 0, 1, 0], dtype=bool)


def _is_word_span(ids: tuple[int, ...]) -> bool:
    if ids == (NO_ANSWER,):
        return True
    for start in np.flatnonzero(WORD_START):
        end = start + len(ids)
        if tuple(CONTEXT[start:end].tolist()) == ids and (end == len(CONTEXT) or WORD_START[end]):
            return True
    return False


@pytest.mark.parametrize(
    "options", [{}, {"beam_size": 4, "n_best": 4}, {"seed": 3, "temperature": 2.0}]
)
def test_every_extractive_hypothesis_is_a_whole_word_span(options: dict) -> None:
    span = ExtractiveSpan(CONTEXT, WORD_START, EOS, NO_ANSWER)
    for salt in range(40):
        for ids in decode((span,), salt, **options):
            assert ids and _is_word_span(ids), (salt, ids)


def test_no_extractive_span_holds_an_unknown_token() -> None:
    """A context token the vocabulary could not spell (unk) is never copied: spans stop
    before it and none starts on it; without the rule the same decodes copy it."""
    unk = int(CONTEXT[3])
    starts = WORD_START.copy()
    starts[np.equal(CONTEXT, unk)] = True

    def outputs(unk_id: int | None) -> list[tuple]:
        span = ExtractiveSpan(CONTEXT, starts, EOS, NO_ANSWER, unk_id=unk_id)
        return [
            ids
            for salt in range(40)
            for options in ({}, {"beam_size": 4, "n_best": 4})
            for ids in decode((span,), salt, **options)
        ]

    assert any(unk in ids for ids in outputs(None))
    assert not any(unk in ids for ids in outputs(unk))


def test_a_forced_prefix_comes_first_then_decoding_is_free() -> None:
    for options in ({}, {"beam_size": 3, "n_best": 3}):
        for salt in range(10):
            for ids in decode((ForcedPrefix((7, 3, 3)),), salt, **options):
                assert ids[:3] == (7, 3, 3)


def test_required_terms_appear_contiguously_in_every_hypothesis() -> None:
    terms = ((9, 10, 11), (4,))
    for options in ({}, {"beam_size": 3, "n_best": 3}, {"seed": 5}):
        for salt in range(20):
            for ids in decode(
                (RequiredTerms.start(terms, ((0, 1), (1, 2)), EOS, budget=10),), salt, **options
            ):
                text = " ".join(map(str, ids))
                assert "9 10 11" in text and 4 in ids, (salt, ids)


def test_required_terms_fit_the_token_budget() -> None:
    """With a budget of exactly the terms' length, they are forced from the start."""
    (ids,) = decode(
        (RequiredTerms.start(((9, 10), (4,)), ((0, 1), (1, 2)), EOS, budget=3),), salt=1
    )
    assert ids[:3] in {(9, 10, 4), (4, 9, 10)}


def test_when_constraints_forbid_everything_the_row_may_end() -> None:
    row = np.log(np.full(VOCAB, 1 / VOCAB, dtype=np.float32))
    restrict_row(row, np.zeros(3, np.float32), (ForcedPrefix((7,)), ForcedPrefix((8,))), EOS)
    assert int(row.argmax()) == EOS


def test_a_term_starts_where_the_attention_points_into_its_source_span() -> None:
    terms = RequiredTerms.start(((9, 10), (4,)), ((3, 5), (7, 8)), EOS, budget=10)
    row = np.log(np.full(VOCAB, 1 / VOCAB, dtype=np.float32))
    row[6] += 1.0  # the model's choice is token 6, not the end
    elsewhere = np.eye(9, dtype=np.float32)[1]  # looking at source token 1: nothing due
    terms.restrict(row, elsewhere)
    assert row[EOS] == np.finfo(np.float32).min and row[6] > row[EOS]  # free, but no end
    row = np.log(np.full(VOCAB, 1 / VOCAB, dtype=np.float32))
    terms.restrict(row, np.eye(9, dtype=np.float32)[7])  # inside the second term's span
    assert int(row.argmax()) == 4 and (row > np.finfo(np.float32).min).sum() == 1
    writing = terms.after(9)  # the hypothesis chose the first term's first token itself
    row = np.log(np.full(VOCAB, 1 / VOCAB, dtype=np.float32))
    writing.restrict(row, elsewhere)
    assert int(row.argmax()) == 10 and (row > np.finfo(np.float32).min).sum() == 1
