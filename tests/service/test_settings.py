"""Settings: defaults, environment, file, flags, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings, load_settings


def test_precedence_flags_over_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "settings.yaml"
    config.write_text("port: 1111\nmax_batch_size: 7\nlog_level: DEBUG\n")
    monkeypatch.setenv("SEQ2SEQ_PORT", "2222")
    settings = load_settings(config, max_batch_size=9)
    assert (settings.port, settings.max_batch_size, settings.log_level) == (2222, 9, "DEBUG")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"providers": ()}, "at least one"),
        ({"providers": ("tpu",)}, "providers"),
        ({"require_gpu": True, "providers": ("cpu",)}, "require_gpu"),
        ({"port": 70000}, "port"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_invalid_settings_name_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**fields)


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_settings(config)
