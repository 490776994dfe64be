"""The checked-in stubs must match protos/ (regenerate with python -m service.api.codegen)."""

from service.api import codegen


def test_generated_stubs_match_the_proto() -> None:
    assert codegen.check() == 0
