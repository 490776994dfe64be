"""Greedy, beam search and sampling on made-up log-probabilities: no model needed."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from service.engine.strategies import (
    SearchContext,
    StepView,
    length_penalty,
    make_search,
    registered,
    strategy_name,
)
from service.engine.strategies.sampling import filtered_probabilities
from service.params import DecodingParams

EOS = 0
VOCAB = 4


def toy_log_probs(prefix: tuple[int, ...]) -> np.ndarray:
    """A deterministic 'model': next-token log-probs depend on the whole prefix."""
    rng = np.random.default_rng(abs(hash(prefix)) % (2**32))
    logits = rng.normal(size=VOCAB) * 2.0
    logits[EOS] += 0.5 * len(prefix)  # ending gets likelier as outputs grow
    return logits - np.log(np.exp(logits).sum())


def run_search(config: SearchContext) -> list[tuple[tuple[int, ...], float, str]]:
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


def config(max_tokens: int = 5, **options: object) -> SearchContext:
    params = DecodingParams(max_output_tokens=max_tokens, return_attention=True, **options)  # type: ignore[arg-type]
    return SearchContext(params=params, eos_id=EOS, source_length=3)


def reference_beam(k: int, max_tokens: int, alpha: float) -> list[tuple[tuple[int, ...], float]]:
    """A straightforward beam search (lists of prefixes, no back-pointers), stopping when k
    hypotheses ended or at max_tokens: what BeamSearch must reproduce exactly."""
    alive: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    ended: list[tuple[tuple[int, ...], float]] = []
    while alive and len(ended) < k:
        candidates = sorted(
            (
                (prefix, token, total + float(toy_log_probs(prefix)[token]))
                for prefix, total in alive
                for token in range(VOCAB)
            ),
            key=lambda c: -c[2],
        )
        alive = []
        for prefix, token, total in candidates[: 2 * k]:
            if token == EOS:
                ended.append((prefix, total / length_penalty(len(prefix) + 1, alpha)))
            elif len(alive) < k:
                alive.append(((*prefix, token), total))
            if len(alive) == k:
                break
        if alive and len(alive[0][0]) >= max_tokens:
            ended += [(p, t / length_penalty(len(p), alpha)) for p, t in alive]
            break
    return sorted(ended, key=lambda e: -e[1])


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


@pytest.mark.parametrize(("k", "alpha"), [(2, 0.6), (3, 0.6), (4, 1.0)])
def test_beam_matches_a_straightforward_reference_beam(k: int, alpha: float) -> None:
    """With a length penalty nothing stops early, so both run to k ended hypotheses."""
    found = run_search(config(max_tokens=6, beam_size=k, n_best=k, length_penalty=alpha))
    expected = reference_beam(k, max_tokens=6, alpha=alpha)[:k]
    assert [f[0] for f in found] == [e[0] for e in expected]
    assert [f[1] for f in found] == pytest.approx([e[1] for e in expected])


def test_beam_never_does_worse_than_greedy() -> None:
    ((_, greedy_score, greedy_reason),) = run_search(config(max_tokens=12))
    best = run_search(config(max_tokens=12, beam_size=4))[0]
    assert greedy_reason == "eos" and best[2] == "eos"  # both end: scores compare
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


def test_strategies_are_chosen_by_the_registry() -> None:
    assert set(registered()) >= {"greedy", "beam", "sampling"}
    assert strategy_name(DecodingParams()) == "greedy"
    assert strategy_name(DecodingParams(beam_size=3)) == "beam"
    for sampling in ({"temperature": 0.7}, {"top_k": 5}, {"top_p": 0.9}, {"seed": 1}):
        assert strategy_name(DecodingParams(**sampling)) == "sampling"  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_sample_and_another_seed_differs() -> None:
    first = run_search(config(max_tokens=10, seed=42, temperature=1.5))
    again = run_search(config(max_tokens=10, seed=42, temperature=1.5))
    others = {run_search(config(max_tokens=10, seed=s, temperature=1.5))[0][0] for s in range(8)}
    assert first == again
    assert len(others) > 1  # sampling really draws


def test_sampled_tokens_follow_the_filtered_distribution() -> None:
    """Drawn first tokens over many seeds match top-k/top-p filtered probabilities."""
    probs = filtered_probabilities(toy_log_probs(()), temperature=1.0, top_k=3, top_p=1.0)
    assert (probs > 0).sum() == 3 and probs.sum() == pytest.approx(1.0)
    counts = np.zeros(VOCAB)
    for seed in range(2000):
        search = make_search(config(max_tokens=1, seed=seed, top_k=3))
        lp = toy_log_probs(())[None, :]
        best = lp.argmax(-1)
        search.advance(StepView(lp, np.ones((1, 3)) / 3, best, lp[0, best]))
        hypothesis = search.hypotheses()[0]
        counts[hypothesis.token_ids[0] if hypothesis.token_ids else EOS] += 1
    assert counts[probs == 0].sum() == 0
    assert np.abs(counts / counts.sum() - probs).max() < 0.04


def test_top_p_keeps_the_smallest_set_with_enough_mass() -> None:
    log_probs = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    probs = filtered_probabilities(log_probs, temperature=1.0, top_k=0, top_p=0.75)
    assert probs.tolist() == pytest.approx([0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0])
    cold = filtered_probabilities(log_probs, temperature=0.1, top_k=0, top_p=1.0)
    assert cold[0] > 0.99  # low temperature approaches the argmax


@pytest.mark.parametrize("width", [7, 300, 5003, 58101])  # small: plain argpartition
def test_top_columns_are_each_rows_largest(width: int) -> None:
    from service.engine.strategies.base import top_columns

    rng = np.random.default_rng(width)
    values = rng.normal(size=(5, width)).astype(np.float32)
    values[1, : width // 2] = np.finfo(np.float32).min  # forbidden ids, as a processor's
    values[2, -1] = 50.0  # the best in the last, partial group
    count = 6
    columns = top_columns(values, count)
    assert all(len(set(row)) == count for row in columns.tolist())
    got = np.sort(np.take_along_axis(values, columns, axis=1), axis=1)  # ties: any of them
    expected = np.sort(values, axis=1)[:, -count:]
    np.testing.assert_array_equal(got, expected)
