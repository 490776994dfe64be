"""Token ids -> text for a finished request: the one place hypotheses become words.

Shared by the offline API and the serving data plane, so both report the same text,
tokens and answerability for the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.bundle import BundleManifest
from service.engine.constraints import Term
from service.engine.requests import GenerationOutput
from service.engine.tokenizer import Tokenizer
from service.params import DecodingParams


@dataclass(frozen=True)
class TextHypothesis:
    text: str  # detokenized output ("" for an answer model's "not in the context")
    token_ids: tuple[int, ...]  # generated ids, EOS excluded
    target_tokens: tuple[str, ...]  # the pieces, same length as token_ids
    score: float  # sum of token log-probs (EOS included) / length penalty
    token_scores: tuple[float, ...]  # log-prob of each token (empty unless asked)
    attention: np.ndarray | None  # (T, S) when asked
    finish_reason: str  # "eos" | "length"


@dataclass(frozen=True)
class DecodedOutput:
    hypotheses: tuple[TextHypothesis, ...]  # n-best, best first
    answerable: bool  # False: an answer model said the context lacks the answer


def _find(ids: tuple[int, ...], term: tuple[int, ...]) -> int:
    """Index where `term` first occurs in `ids`, or -1."""
    for start in range(len(ids) - len(term) + 1):
        if ids[start : start + len(term)] == term:
            return start
    return -1


def render(tokenizer: Tokenizer, ids: tuple[int, ...], terms: tuple[Term, ...]) -> str:
    """The decoded text, with each required term's tokens spelt exactly as the caller wrote
    the term (the tokenizer's normalisation may have changed a character of it)."""
    kept = tuple(i for i in ids if not tokenizer.is_skipped(i))
    full = tokenizer.decode_raw(kept)
    pieces: list[str] = []
    cursor = 0  # characters of `full` already placed
    found = sorted((_find(kept, term_ids), term_ids, literal) for term_ids, literal in terms)
    for start, term_ids, literal in found:
        if start < 0:
            continue
        before = tokenizer.decode_raw(kept[:start])
        through = tokenizer.decode_raw(kept[: start + len(term_ids)])
        if not (full.startswith(through) and through.startswith(before)) or len(before) < cursor:
            continue  # the decoder re-spelt across the boundary: keep its own spelling
        piece = full[len(before) : len(through)]
        pieces += [full[cursor : len(before)], piece[: len(piece) - len(piece.lstrip())], literal]
        cursor = len(through)
    pieces.append(full[cursor:])
    return "".join(pieces).strip()


def decode_output(
    output: GenerationOutput,
    tokenizer: Tokenizer,
    manifest: BundleManifest,
    params: DecodingParams,
    terms: tuple[Term, ...] = (),
) -> DecodedOutput:
    """Scores and attention are kept only when `params` asked for them; required terms are
    rendered verbatim."""
    no_answer_id = manifest.special_tokens.no_answer_id
    is_answer = manifest.task == "answer"

    def answerable(ids: tuple[int, ...]) -> bool:
        return not (is_answer and ids[:1] == (no_answer_id,))

    hypotheses = tuple(
        TextHypothesis(
            text=render(tokenizer, h.token_ids, terms) if answerable(h.token_ids) else "",
            token_ids=h.token_ids,
            target_tokens=tuple(tokenizer.id_to_token(i) for i in h.token_ids),
            score=float(h.score),
            token_scores=h.token_scores if params.return_scores else (),
            attention=h.attention if params.return_attention else None,
            finish_reason=h.finish_reason,
        )
        for h in output.hypotheses
    )
    return DecodedOutput(hypotheses=hypotheses, answerable=answerable(output.best.token_ids))
