"""The family registries: one list of names for bundles, one entry per trained family for
config, CLI and build (tests/test_static.py checks that no import cycle joins them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from model_export.cli import main
from model_export.config import ModelConfig
from model_export.families import FAMILIES, build_model
from service.families import FAMILIES as BUNDLE_FAMILIES
from tests.model_export.factories import tiny_model_config

ROOT = Path(__file__).resolve().parents[2]


def test_every_trained_family_is_a_bundle_family_and_builds() -> None:
    assert set(FAMILIES) <= set(BUNDLE_FAMILIES)
    for name, family in FAMILIES.items():
        extra = {"heads": 2} if name == "transformer" else {}
        model = build_model(tiny_model_config(50, architecture=name, **extra))
        assert type(model) is family.model_class() and model.config.architecture == name
        assert model.state_names(), name


def test_family_defaults_and_checks_come_from_the_registry() -> None:
    assert ModelConfig(architecture="transformer").attention_score == "scaled_dot"
    rnn = ModelConfig()
    assert (rnn.cell, rnn.attention_score) == ("gru", "general")
    with pytest.raises(ValidationError, match="unknown architecture 'marian'; one of rnn"):
        ModelConfig(architecture="marian")
    with pytest.raises(ValidationError, match="not divisible by heads 3"):
        ModelConfig(architecture="transformer", heads=3)


def test_cli_choices_are_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["build", "--task", "translate", "--architecture", "lstm"])
    assert exit_info.value.code == 2
    choices = ", ".join(f"'{name}'" for name in FAMILIES)
    assert f"invalid choice: 'lstm' (choose from {choices})" in capsys.readouterr().err


def test_contract_and_config_import_without_torch() -> None:
    code = (
        "import sys, service.bundle, model_export.config, model_export.families; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
