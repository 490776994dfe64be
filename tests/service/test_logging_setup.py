"""Log formatting: one JSON object per line with the call's extra fields, or text."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from service.logging_setup import JsonFormatter, TextFormatter, configure_logging


def _record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("service.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_json_line_has_the_standard_and_the_extra_fields() -> None:
    line = JsonFormatter().format(_record("hello %s", "world", request_id="r1", version=2))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "WARNING" and entry["logger"] == "service.test"
    assert entry["message"] == "hello world"
    assert (entry["request_id"], entry["version"]) == ("r1", 2)
    assert entry["ts"].endswith("+00:00")


def test_json_line_carries_the_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]


def test_text_line_appends_extras_as_key_value() -> None:
    line = TextFormatter().format(_record("hi", request_id="r2", code="OK"))
    assert line.endswith("service.test: hi request_id=r2 code=OK")


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_configure_logging_routes_everything_through_one_handler(restore_root, fmt) -> None:
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream)
    logging.getLogger("service.any").info("ready", extra={"port": 1})
    logging.getLogger("service.any").debug("hidden")
    (line,) = stream.getvalue().splitlines()
    if fmt == "json":
        assert json.loads(line)["port"] == 1
    else:
        assert line.endswith("ready port=1")
    assert len(logging.getLogger().handlers) == 1
