"""Per-row constraints on what a hypothesis may say next: extractive spans, target prefixes
and required (protected or glossary) terms.

A constraint is an immutable state machine over one hypothesis: `restrict(row, attention)`
lowers the
log-probs of tokens it forbids (in place, to the lowest finite value, so every strategy --
greedy, beam, sampling -- simply never picks them), and `after(token)` returns the state
for the hypothesis extended by `token`. The engine keeps one tuple of constraint states per
batch row and reorders them with the strategy's parents, so beams and the shared continuous
batch need nothing special. Requests without constraints cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

Term = tuple[tuple[int, ...], str]  # (target token ids, the literal text they render as)


def lowest(row: np.ndarray) -> float:
    return float(np.finfo(row.dtype).min)


def keep_only(row: np.ndarray, allowed: np.ndarray) -> None:
    """Every token of `row` (V,) outside `allowed` gets the lowest log-prob."""
    kept = row[allowed]
    row.fill(lowest(row))
    row[allowed] = kept


class Constraint(Protocol):
    def restrict(self, row: np.ndarray, attention: np.ndarray) -> None:
        """Lower the log-probs (V,) of the tokens this state forbids, in place; `attention`
        (S_batch,) is where the decoder looked in the source at this step."""
        ...

    def after(self, token: int) -> Constraint:
        """The state once the hypothesis is extended by `token`."""
        ...


@dataclass(frozen=True)
class ForcedPrefix:
    """The output starts with these ids (CTranslate2's target_prefix); then it is free."""

    ids: tuple[int, ...]
    index: int = 0  # how many have been emitted

    def restrict(self, row: np.ndarray, attention: np.ndarray) -> None:
        if self.index < len(self.ids):
            keep_only(row, np.array([self.ids[self.index]]))

    def after(self, token: int) -> Constraint:
        return replace(self, index=self.index + 1) if self.index < len(self.ids) else self


@dataclass(frozen=True)
class ExtractiveSpan:
    """Every hypothesis is a span of whole words of `context` (token ids), or the model's
    "not in the context" token alone.

    `active` holds the context positions where the output so far ends (None before the
    first token), so the next allowed tokens are the ones that follow those positions. A
    span starts at a word start and may end only before a word start (or at the end of the
    context), so "Anton Zino" cannot stop inside "Zinoviev". No span holds `unk_id` (a
    character the vocabulary lacks, which the answer could not spell back); a span may end
    before one.
    """

    context: np.ndarray  # (C,) int64 token ids of the context part of the source
    word_start: np.ndarray  # (C,) bool: token j begins a word
    eos_id: int
    no_answer_id: int | None
    unk_id: int | None = None  # the unknown token: never part of a span
    active: np.ndarray | None = None  # (k,) int64 end positions of the span so far
    closed: bool = False  # "not in the context" was said: only the end may follow

    def _following(self) -> np.ndarray:
        assert self.active is not None
        following = self.active + 1
        return following[following < self.context.size]

    def _allowed(self) -> np.ndarray:
        if self.closed:
            return np.array([self.eos_id])
        if self.active is None:
            starts = self.context[self.word_start]  # repeats are harmless to keep_only
            starts = starts[starts != self.unk_id]
            if self.no_answer_id is None:
                return starts
            return np.append(starts, self.no_answer_id)
        following = self._following()
        allowed = self.context[following]
        allowed = allowed[allowed != self.unk_id]
        # The span may end where the next context token starts a word, or at the end.
        at_end = bool((self.active + 1 >= self.context.size).any())
        if at_end or bool(self.word_start[following].any()):
            allowed = np.append(allowed, self.eos_id)
        return allowed

    def restrict(self, row: np.ndarray, attention: np.ndarray) -> None:
        keep_only(row, self._allowed())

    def after(self, token: int) -> Constraint:
        if self.closed or token == self.eos_id:
            return self
        if self.active is None:
            if token == self.no_answer_id:
                return replace(self, closed=True)
            return replace(self, active=np.flatnonzero((self.context == token) & self.word_start))
        following = self._following()
        return replace(self, active=following[self.context[following] == token])


@dataclass(frozen=True)
class RequiredTerms:
    """Each term (target token ids) appears in the output, verbatim.

    While a term is being written its next token is forced. A term starts when the
    hypothesis itself emits the term's first token; when the decoder's attention peaks
    inside the term's span of the source (it is about to translate that span); or, for the
    first missing term, when the model would end or the token budget only just fits what is
    missing. The end of the sequence is forbidden while terms are missing.
    """

    terms: tuple[tuple[int, ...], ...]
    sources: tuple[tuple[int, int], ...]  # each term's source token span [start, end)
    eos_id: int
    budget: int  # tokens the hypothesis may still emit (its max_output_tokens left)
    missing: frozenset[int] = frozenset()  # indexes of terms not yet started
    writing: tuple[int, int] | None = None  # (term index, tokens of it emitted)

    @staticmethod
    def start(
        terms: tuple[tuple[int, ...], ...],
        sources: tuple[tuple[int, int], ...],
        eos_id: int,
        budget: int,
    ) -> RequiredTerms:
        return RequiredTerms(terms, sources, eos_id, budget, frozenset(range(len(terms))))

    def _due(self, row: np.ndarray, attention: np.ndarray) -> int | None:
        """The missing term to start now, if any."""
        looked_at = int(attention.argmax()) if attention.size and attention.max() > 0 else -1
        for index in sorted(self.missing):
            start, end = self.sources[index]
            if start <= looked_at < end:
                return index
        owed = sum(len(self.terms[i]) for i in self.missing)
        if int(row.argmax()) == self.eos_id or self.budget <= owed:
            return min(self.missing)
        return None

    def restrict(self, row: np.ndarray, attention: np.ndarray) -> None:
        if self.writing is not None:
            term, done = self.writing
            keep_only(row, np.array([self.terms[term][done]]))
            return
        if not self.missing:
            return
        due = self._due(row, attention)
        if due is not None:
            keep_only(row, np.array([self.terms[due][0]]))  # write the missing term now
        else:
            row[self.eos_id] = lowest(row)

    def after(self, token: int) -> Constraint:
        budget = self.budget - 1
        if self.writing is not None:
            term, done = self.writing
            done += 1
            writing = None if done == len(self.terms[term]) else (term, done)
            return replace(self, budget=budget, writing=writing)
        for index in sorted(self.missing):
            if self.terms[index][0] == token:
                missing = self.missing - {index}
                writing = None if len(self.terms[index]) == 1 else (index, 1)
                return replace(self, budget=budget, missing=missing, writing=writing)
        return replace(self, budget=budget)


def restrict_row(
    row: np.ndarray, attention: np.ndarray, states: tuple[Constraint, ...], eos_id: int
) -> None:
    """Apply every constraint of a row; if together they forbid everything, let it end."""
    original_eos = float(row[eos_id])
    for state in states:
        state.restrict(row, attention)
    if float(row.max()) == lowest(row):
        row[eos_id] = original_eos if original_eos > lowest(row) else 0.0
