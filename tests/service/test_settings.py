"""Settings: defaults, environment, file, flags, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import CONFIGURATION_DOC, Settings, configuration_markdown, load_settings
from tests.conftest import REPO_ROOT


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


def test_observability_and_reload_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.log_format, defaults.repository_poll_interval) == ("json", 0.0)
    assert defaults.default_versions == {}
    monkeypatch.setenv("SEQ2SEQ_DEFAULT_VERSIONS", '{"summarize-en": 1}')
    monkeypatch.setenv("SEQ2SEQ_LOG_FORMAT", "text")
    settings = load_settings(repository_poll_interval=5)
    assert settings.default_versions == {"summarize-en": 1}
    assert (settings.log_format, settings.repository_poll_interval) == ("text", 5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"log_format": "xml"}, "log_format"),
        ({"repository_poll_interval": -1}, "poll"),
        ({"allow_empty_repository": True}, "allow_empty_repository needs repository_poll"),
        ({"drain_quiet_period": -0.5}, "drain_quiet_period"),
    ],
)
def test_invalid_observability_settings(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**fields)


def test_the_configuration_page_is_generated_from_the_settings() -> None:
    page = (REPO_ROOT / CONFIGURATION_DOC).read_text(encoding="utf-8")
    assert page == configuration_markdown(), "run python -m service.settings --write"
    for name in Settings.model_fields:
        assert f"| `{name}` | `SEQ2SEQ_{name.upper()}`" in page
