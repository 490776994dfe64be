"""Token ids -> text for a finished request: the one place hypotheses become words.

Shared by the offline API and the serving data plane, so both report the same text,
tokens and answerability for the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.bundle import BundleManifest
from service.engine.requests import GenerationOutput
from service.engine.tokenizer import Tokenizer


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


def decode_output(
    output: GenerationOutput,
    tokenizer: Tokenizer,
    manifest: BundleManifest,
    *,
    return_scores: bool,
    return_attention: bool,
) -> DecodedOutput:
    no_answer_id = manifest.special_tokens.no_answer_id
    is_answer = manifest.task == "answer"

    def answerable(ids: tuple[int, ...]) -> bool:
        return not (is_answer and ids[:1] == (no_answer_id,))

    hypotheses = tuple(
        TextHypothesis(
            text=tokenizer.decode(h.token_ids) if answerable(h.token_ids) else "",
            token_ids=h.token_ids,
            target_tokens=tuple(tokenizer.id_to_token(i) for i in h.token_ids),
            score=float(h.score),
            token_scores=h.token_scores if return_scores else (),
            attention=h.attention if return_attention else None,
            finish_reason=h.finish_reason,
        )
        for h in output.hypotheses
    )
    return DecodedOutput(hypotheses=hypotheses, answerable=answerable(output.best.token_ids))
