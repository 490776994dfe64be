"""The lexical shortlist: Marian's binary file, a sentence's selection, a batch's vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.bundle import BundleError, DecodingDefaults
from service.engine.shortlist import (
    batch_vocabulary,
    narrowed_best,
    read_shortlist,
    renormalised,
)
from service.errors import InvalidArgument
from service.params import DecodingParams, ModelLimits
from tests.model_export.importers.marian_nmt_factory import write_shortlist

VOCAB = 40


@pytest.fixture
def lex(tmp_path: Path) -> Path:
    path = tmp_path / "lex.s2t.bin"
    write_shortlist(path, VOCAB, first_num=5, best_num=3, seed=3)
    return path


def _read(path: Path, *, shared: bool = True, verify: bool = True):
    return read_shortlist(
        path, source_vocab=VOCAB, target_vocab=VOCAB, shared=shared, verify_checksum=verify
    )


def test_selection_is_marians(lex: Path) -> None:
    """firstNum ids, every source word's candidates, the source ids when shared, then the
    next free ids from firstNum on up to a multiple of 8; `always` besides."""
    shortlist = _read(lex)
    source = [7, 12, 7, 0]
    expected = set(range(5)) | set(source)
    for word in (7, 12, 0):
        expected |= set(shortlist.candidates[shortlist.offsets[word] : shortlist.offsets[word + 1]])
    selected = shortlist.select(source)
    assert set(expected) <= set(selected.tolist())
    assert selected.size % 8 == 0 and selected.size - len(expected) < 8
    padding = sorted(set(selected.tolist()) - expected)
    free = [i for i in range(5, VOCAB) if i not in expected]
    assert padding == free[: len(padding)]
    assert list(selected) == sorted(selected)
    not_shared = _read(lex, shared=False).select([39])
    assert 39 in _read(lex).select([39]) and (39 in not_shared) == (
        39 in shortlist.candidates[shortlist.offsets[39] :]
    )
    assert 33 in shortlist.select([1], always=33)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-4] + bytes(4), "checksum"),
        (lambda b: bytes(8) + b[8:], "magic"),
        (lambda b: b[:-8], "claims"),
    ],
)
def test_broken_files_are_refused_naming_the_file(lex: Path, damage, message: str) -> None:
    lex.write_bytes(damage(lex.read_bytes()))
    with pytest.raises(BundleError, match=message) as refused:
        _read(lex)
    assert str(lex) in str(refused.value)


def test_a_shortlist_for_another_vocabulary_is_refused(lex: Path) -> None:
    with pytest.raises(BundleError, match="covers 40 source ids"):
        read_shortlist(lex, source_vocab=50, target_vocab=VOCAB, shared=True, verify_checksum=False)


def test_batch_vocabulary_is_the_union_with_each_row_restricted_to_its_own() -> None:
    a, b = np.array([0, 1, 5]), np.array([0, 2, 5, 9])
    vocabulary = batch_vocabulary([a, b], [1, 2], vocab_size=12, max_fraction=1.0)
    assert vocabulary is not None and vocabulary.ids is not None and vocabulary.mask is not None
    assert vocabulary.ids.tolist() == [0, 1, 2, 5, 9]
    assert vocabulary.mask.tolist() == [
        [True, True, False, True, False],
        [True, False, True, True, True],
        [True, False, True, True, True],
    ]
    assert batch_vocabulary([None, None], [1, 1], vocab_size=12) is None
    for large in (
        batch_vocabulary([a, None], [1, 1], vocab_size=12, max_fraction=1.0),  # one is not
        batch_vocabulary([a, b], [1, 2], vocab_size=12, max_fraction=0.25),  # 5 > 3 columns
    ):
        assert large is not None and large.ids is None and large.mask is None
        assert large.selections[0] is a


def test_narrowing_a_full_step_equals_the_restricted_softmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 6)).astype(np.float32)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    selection = np.array([0, 2, 3])
    expected = logits[:, selection] - np.log(np.exp(logits[:, selection]).sum(axis=1))[:, None]
    full = renormalised(log_probs, selection)
    np.testing.assert_allclose(full[:, selection], expected, atol=1e-6)
    assert (np.delete(full, selection, axis=1) == np.finfo(np.float32).min).all()
    vocabulary = batch_vocabulary([selection, np.array([1])], [2, 1], 6, max_fraction=0.0)
    assert vocabulary is not None and vocabulary.restricted_rows is not None
    rows = np.concatenate([log_probs, log_probs[:1]])
    best, scores = narrowed_best(rows, vocabulary)
    assert best[:2].tolist() == selection[expected.argmax(axis=1)].tolist() and best[2] == 1
    np.testing.assert_allclose(scores[:2], expected.max(axis=1), atol=1e-6)
    assert scores[2] == 0.0  # the only id of its selection


def test_the_option_is_refused_for_a_model_without_a_shortlist() -> None:
    limits = ModelLimits(max_output_tokens=10, max_beam_size=4, max_batch_size=8)
    with pytest.raises(InvalidArgument, match=r"options\.shortlist"):
        DecodingParams(shortlist=True).for_model(limits)
    assert DecodingParams().for_model(limits).shortlist is False
    with_one = ModelLimits(10, 4, 8, defaults=DecodingDefaults(shortlist=True))
    assert DecodingParams().for_model(with_one).shortlist is True
    assert DecodingParams(shortlist=False).for_model(with_one).shortlist is False
