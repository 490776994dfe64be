from __future__ import annotations

import pytest

from service.errors import InvalidArgument
from service.formats.limits import FileLimits
from service.formats.plan import plan_units
from service.formats.restyle import Translation
from service.formats.units import Run, Unit

from .conftest import always, mirror


def test_sentences_of_a_unit_and_where_they_go_back():
    unit = Unit((Run("First one. Then ", 0), Run("bold", 1), Run(" text.", 0)))
    plan = plan_units([unit], "en", lambda text: len(text) < 20)
    assert [(s.text, s.styled) for s in plan.sentences] == [
        ("First one.", False),
        ("Then bold text.", True),
    ]
    assert plan.assemble(mirror(plan.sentences)) == [
        (Run("ONE. FIRST TEXT. ", 0), Run("BOLD", 1), Run(" THEN", 0))
    ]


def test_a_unit_that_fits_is_sent_whole_and_code_like_pieces_are_kept():
    units = [Unit((Run("Two sentences. In one request.", 0),)), Unit((Run("--fast", 0),))]
    plan = plan_units(units, "en", always)
    assert [s.text for s in plan.sentences] == ["Two sentences. In one request."]
    assert plan.assemble([Translation("Deux phrases.")])[1] == (Run("--fast", 0),)


def test_verbatim_runs_become_terms_to_keep():
    unit = Unit((Run("Run ", 0), Run("make all", 1), Run(" first.", 0)), verbatim=frozenset({1}))
    plan = plan_units([unit], "en", always)
    assert plan.sentences[0].keep == ("make all",)


def test_limits_refuse_files_too_large_to_translate():
    units = [Unit((Run("word " * 10, 0),))] * 3
    with pytest.raises(InvalidArgument, match=r"3 paragraphs.*limit is 2"):
        plan_units(units, "en", always, FileLimits(max_units=2))
    with pytest.raises(InvalidArgument, match=r"150 characters.*limit is 100"):
        plan_units(units, "en", always, FileLimits(max_chars=100))


def test_assemble_refuses_a_wrong_count():
    plan = plan_units([Unit((Run("One.", 0),))], "en", always)
    with pytest.raises(ValueError, match="0 translations for 1 sentences"):
        plan.assemble([])
