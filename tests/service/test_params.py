"""DecodingParams: defaults normalised once, every range checked with the field's name."""

from __future__ import annotations

import math

import pytest

from service.errors import InvalidArgument
from service.params import DecodingParams, ModelLimits

LIMITS = ModelLimits(max_output_tokens=48, max_beam_size=8, max_batch_size=32)


def test_zero_defaults_become_one_and_the_model_limit() -> None:
    params = DecodingParams(beam_size=0, n_best=0).for_model(LIMITS)
    assert (params.beam_size, params.n_best, params.rows) == (1, 1, 1)
    assert params.max_output_tokens == 48
    assert DecodingParams(max_output_tokens=5).for_model(LIMITS).max_output_tokens == 5


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"temperature": 0.0}, "options.temperature"),
        ({"temperature": -1.0}, "options.temperature"),
        ({"temperature": math.nan}, "options.temperature"),
        ({"top_p": 0.0}, "options.top_p"),
        ({"top_p": 1.0001}, "options.top_p"),
        ({"top_k": -1}, "options.top_k"),
        ({"seed": -1}, "options.seed"),
        ({"beam_size": 2, "temperature": 0.5}, "options.beam_size"),
        ({"n_best": 3, "beam_size": 2}, "options.n_best"),
        ({"length_penalty": -0.1}, "options.length_penalty"),
        ({"min_output_tokens": 9, "max_output_tokens": 8}, "options.min_output_tokens"),
    ],
)
def test_out_of_range_values_name_their_field(options: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        DecodingParams(**options)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"beam_size": 9}, "options.beam_size"),
        ({"max_output_tokens": 49}, "options.max_output_tokens"),
        ({"min_output_tokens": 49}, "options.min_output_tokens"),
        ({"return_attention": True}, "options.return_attention"),
    ],
)
def test_model_limits_name_their_field(options: dict, field: str) -> None:
    limits = ModelLimits(
        max_output_tokens=48, max_beam_size=8, max_batch_size=32, has_attention=False
    )
    with pytest.raises(InvalidArgument) as caught:
        DecodingParams(**options).for_model(limits)
    assert caught.value.field == field


def test_sampling_is_any_sampling_option() -> None:
    assert not DecodingParams().sampling
    assert DecodingParams(top_k=5).sampling and DecodingParams(seed=0).sampling
    assert DecodingParams(top_p=1.0).sampling and DecodingParams(temperature=1.0).sampling
