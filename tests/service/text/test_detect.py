from __future__ import annotations

import pytest

from service.text.detect import LanguageDetector
from tests.conftest import heldout


@pytest.fixture(scope="module")
def four() -> LanguageDetector:
    return LanguageDetector(["en", "fr", "de", "it"])


@pytest.mark.parametrize("language", ["fr", "de", "it"])
def test_heldout_translations_are_recognised(four, language):
    rows = [r for r in heldout(f"translate-en-{language}") if len(r["target"]) >= 20]
    hits = sum(four.detect(r["target"]).language == language for r in rows)
    english = sum(four.detect(r["source"]).language == "en" for r in rows if len(r["source"]) >= 20)
    assert hits >= 0.9 * len(rows)
    assert english >= 0.9 * len(rows)


def test_rank_is_sorted_and_confidences_are_probabilities(four):
    ranked = four.rank("Ceci est une phrase en français, évidemment.", top=4)
    assert ranked[0].language == "fr"
    assert [d.confidence for d in ranked] == sorted((d.confidence for d in ranked), reverse=True)
    assert 0.99 <= sum(d.confidence for d in ranked) <= 1.01


def test_unrestricted_detector_names_other_languages():
    detector = LanguageDetector()
    assert "es" in detector.languages
    assert detector.detect("El perro come la comida en la cocina de la casa.").language == "es"


def test_unknown_language_codes_are_refused():
    with pytest.raises(ValueError, match="no language model for xx"):
        LanguageDetector(["en", "xx"])
