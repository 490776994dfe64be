"""Greedy and beam search on made-up log-probabilities: no model needed."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from service.engine.decoding import SearchConfig, StepView, length_penalty, make_search

EOS = 0
VOCAB = 4


def toy_log_probs(prefix: tuple[int, ...]) -> np.ndarray:
    """A deterministic 'model': next-token log-probs depend on the whole prefix."""
    rng = np.random.default_rng(abs(hash(prefix)) % (2**32))
    logits = rng.normal(size=VOCAB) * 2.0
    logits[EOS] += 0.5 * len(prefix)  # ending gets likelier as outputs grow
    return logits - np.log(np.exp(logits).sum())


def run_search(config: SearchConfig) -> list[tuple[tuple[int, ...], float, str]]:
    search = make_search(config)
    prefixes: list[tuple[int, ...]] = [()]
    while not search.done:
        log_probs = np.stack([toy_log_probs(p) for p in prefixes])
        attention = np.full((len(prefixes), 3), 1 / 3)
        best = log_probs.argmax(-1)
        advance = search.advance(
            StepView(log_probs, attention, best, log_probs[np.arange(len(prefixes)), best])
        )
        prefixes = [
            prefixes[p] + (int(t),) for p, t in zip(advance.parents, advance.next_ids, strict=True)
        ]
    return [(h.token_ids, h.score, h.finish_reason) for h in search.hypotheses()]


def exhaustive(max_tokens: int, alpha: float) -> list[tuple[tuple[int, ...], float]]:
    """Every output up to max_tokens, scored like the beam scores finished hypotheses."""
    results = []
    for length in range(0, max_tokens):
        for body in itertools.product(range(1, VOCAB), repeat=length):
            total = sum(toy_log_probs(body[:i])[body[i]] for i in range(length))
            total += toy_log_probs(body)[EOS]
            results.append((body, total / length_penalty(length + 1, alpha)))
    return sorted(results, key=lambda r: -r[1])


def config(**overrides: object) -> SearchConfig:
    fields: dict[str, object] = {
        "eos_id": EOS,
        "max_tokens": 5,
        "source_length": 3,
        "keep_attention": True,
    }
    fields.update(overrides)
    return SearchConfig(**fields)  # type: ignore[arg-type]


def test_greedy_follows_the_argmax() -> None:
    ((tokens, score, reason),) = run_search(config())
    prefix: tuple[int, ...] = ()
    expected = 0.0
    for token in tokens:
        assert int(toy_log_probs(prefix).argmax()) == token
        expected += toy_log_probs(prefix)[token]
        prefix += (token,)
    if reason == "eos":
        assert int(toy_log_probs(prefix).argmax()) == EOS
        expected += toy_log_probs(prefix)[EOS]  # the score counts the end, like beam search
    assert score == pytest.approx(expected)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_a_wide_beam_finds_the_exhaustive_best(alpha: float) -> None:
    best = exhaustive(max_tokens=4, alpha=alpha)
    found = run_search(config(beam_size=64, n_best=3, max_tokens=4, length_penalty=alpha))
    eos_found = [f for f in found if f[2] == "eos"]
    assert eos_found[0][0] == best[0][0]
    assert eos_found[0][1] == pytest.approx(best[0][1])
    scores = [f[1] for f in found]
    assert scores == sorted(scores, reverse=True)


def test_beam_of_one_is_greedy() -> None:
    greedy = run_search(config(max_tokens=6))
    beam = run_search(config(max_tokens=6, beam_size=1))
    assert greedy == beam


def test_beam_never_does_worse_than_greedy() -> None:
    ((_, greedy_score, _),) = run_search(config(max_tokens=6))
    best = run_search(config(max_tokens=6, beam_size=4))[0]
    if best[2] == "eos":
        assert best[1] >= greedy_score - 1e-9


def test_n_best_are_distinct_and_attention_matches_tokens() -> None:
    search = make_search(config(beam_size=4, n_best=4, max_tokens=6))
    prefixes: list[tuple[int, ...]] = [()]
    while not search.done:
        log_probs = np.stack([toy_log_probs(p) for p in prefixes])
        attention = np.tile(np.array([0.2, 0.3, 0.5]), (len(prefixes), 1))
        best = log_probs.argmax(-1)
        advance = search.advance(StepView(log_probs, attention, best, best.astype(float)))
        prefixes = [
            prefixes[p] + (int(t),) for p, t in zip(advance.parents, advance.next_ids, strict=True)
        ]
    hypotheses = search.hypotheses()
    assert len({h.token_ids for h in hypotheses}) == len(hypotheses) == 4
    for h in hypotheses:
        assert h.attention is not None and h.attention.shape == (len(h.token_ids), 3)
        assert math.isfinite(h.score)


def test_length_penalty_formula() -> None:
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
