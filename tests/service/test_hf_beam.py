"""Hugging Face's beam search (`hf_beam`) on made-up log-probabilities, against a plain
transcription of transformers 5's `_beam_search` for one source (no model needed; the
integration test compares with transformers itself)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.bundle import DecodingDefaults
from service.engine.strategies import SearchContext, StepView, make_search, strategy_name
from service.params import DecodingParams

EOS = 0
VOCAB = 10  # more than 2 x beam: HF's -1e9 starting beams never reach its top 2k


def toy_model(seed: int):
    """Next-token log-probs as a deterministic function of (seed, prefix)."""

    def log_probs(prefix: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng(abs(hash((seed, prefix))) % (2**32))
        logits = rng.normal(size=VOCAB) * 2.0
        logits[EOS] += 0.4 * len(prefix) - 1.0  # ending gets likelier as outputs grow
        return logits - np.log(np.exp(logits).sum())

    return log_probs


def transformers_beam(model, k: int, limit: int, penalty: float, early: str) -> list[tuple]:
    """transformers 5 GenerationMixin._beam_search, one batch item, one EOS id: returns the
    ended hypotheses (tokens without EOS, score), best first."""
    running = [((), 0.0)] + [((), -1e9)] * (k - 1)
    ended: list[tuple[float, tuple[int, ...]]] = []
    improvable = True
    generated = 0
    while True:
        candidates = [
            (total + float(lp), beam, token)
            for beam, (prefix, total) in enumerate(running)
            for token, lp in enumerate(model(prefix))
        ]
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        top = candidates[: 2 * k]
        length = generated + 1
        hits = [token == EOS or length >= limit for _, _, token in top]
        full_before = len(ended) == k
        if improvable and not (early == "full" and full_before):
            for rank, ((total, beam, token), hit) in enumerate(zip(top, hits, strict=True)):
                if hit and rank < k:
                    tokens = running[beam][0] + (() if token == EOS else (token,))
                    ended.append((total / length**penalty, tokens))
            ended = sorted(ended, key=lambda e: -e[0])[:k]
        running = [
            (running[beam][0] + (token,), total)
            for (total, beam, token), hit in zip(top, hits, strict=True)
            if not hit
        ][:k]
        generated += 1
        if improvable and len(ended) == k:
            horizon = limit if early == "never" and penalty > 0 else generated
            best = running[0][1] / horizon**penalty if running else -1e9
            improvable = best > min(score for score, _ in ended)
        done_full = early == "full" and len(ended) == k
        if not improvable or done_full or all(hits):
            return [(tokens, score) for score, tokens in ended]


def ours(model, k: int, limit: int, penalty: float, early: str, n_best: int) -> list[tuple]:
    defaults = DecodingDefaults(beam="hf", length_penalty=penalty, early_stopping=early)
    params = DecodingParams(
        beam_size=k,
        n_best=n_best,
        max_output_tokens=limit,
        length_penalty=penalty,
        defaults=defaults,
    )
    search = make_search(SearchContext(params=params, eos_id=EOS, source_length=3))
    prefixes: list[tuple[int, ...]] = [()]
    while not search.done:
        log_probs = np.stack([model(p) for p in prefixes])
        best = log_probs.argmax(-1)
        advance = search.advance(
            StepView(log_probs, np.zeros((len(prefixes), 3)), best, log_probs.max(-1))
        )
        prefixes = [
            prefixes[p] + (int(t),) for p, t in zip(advance.parents, advance.next_ids, strict=True)
        ]
    return [(h.token_ids, h.score) for h in search.hypotheses()]


@pytest.mark.parametrize(
    ("k", "penalty", "early"),
    list(itertools.product((2, 4), (1.0, 0.6, 2.0), ("heuristic", "full", "never"))),
)
def test_equals_transformers_beam_search(k: int, penalty: float, early: str) -> None:
    for seed in range(25):
        model = toy_model(seed)
        limit = 3 + seed % 6
        expected = transformers_beam(model, k, limit, penalty, early)
        got = ours(model, k, limit, penalty, early, n_best=k)
        assert [t for t, _ in got] == [t for t, _ in expected], (seed, limit)
        np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-9)


def test_chosen_by_the_model_not_by_the_request() -> None:
    hf = DecodingDefaults(beam="hf", length_penalty=1.0)
    assert strategy_name(DecodingParams(beam_size=4, defaults=hf)) == "hf_beam"
    assert strategy_name(DecodingParams(beam_size=4)) == "beam"
    assert strategy_name(DecodingParams(beam_size=1, defaults=hf)) == "greedy"
