"""Every check of a request's own fields, for every protocol: the front door calls these and
nothing else validates a request (the options type checks its ranges itself, and the engine's
preparation what depends on the model: source length, prefixes and terms).

Every refusal is an InvalidArgument naming the field as the caller's protocol names it, so
the same mistake gets the same status and message over gRPC, HTTP and LibreTranslate's API.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from service.errors import InvalidArgument
from service.params import DecodingParams
from service.serving.models import ModelChoice

FORMATS = ("text", "html")
MAX_NAME_CHARS = 128  # longest model name or language code accepted
# Unicode category Cc (C0, DEL and C1 controls) less tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CHOICE_FIELDS = ("model", "model_version")  # DecodingOptions' fields that pick the model


def require_no_controls(value: str, field: str) -> str:
    """Refuse control characters (NUL, BEL, ESC, C1...) other than tab and newlines.

    The tokenizers stop or emit garbage at NUL, and such characters would reach log lines
    verbatim; the message names the first one by position, never echoing it.
    """
    found = _CONTROL.search(value)
    if found is not None:
        raise InvalidArgument(
            f"{field} holds control character U+{ord(found.group()):04X} at position "
            f"{found.start()}; only tab, newline and carriage return are accepted",
            field=field,
        )
    return value


def require_length(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(
            f"{field} has {len(value)} characters; the limit is {limit}", field=field
        )
    return value


def require_text(value: str, field: str, limit: int) -> str:
    """Non-empty (format characters such as U+200B do not count), within `limit`, no controls."""
    if not any(not c.isspace() and unicodedata.category(c) != "Cf" for c in value):
        raise InvalidArgument(f"{field} is empty; send some text", field=field)
    require_length(value, field, limit)
    return require_no_controls(value, field)


def require_name(value: str, field: str) -> str:
    """A model name or language code: short and free of control characters."""
    require_length(value, field, MAX_NAME_CHARS)
    return require_no_controls(value, field)


def language(value: str, field: str, default: str = "") -> str:
    """A language code as the model table keys it (lower case), or `default` when empty."""
    return require_name(value.strip().lower(), field) or default


def require_target(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is empty; name one, e.g. 'fr'", field=field)
    return value


def require_format(value: str) -> str:
    """ "text" (also when empty) or "html"."""
    chosen = value or "text"
    if chosen not in FORMATS:
        raise InvalidArgument(
            f"format '{chosen}' is not supported; use one of {', '.join(FORMATS)}",
            field="format",
        )
    return chosen


def require_count(value: int, field: str) -> int:
    """A count a caller may leave at 0 (the default) but never make negative."""
    if value < 0:
        raise InvalidArgument(f"{field} must not be negative (0 = the default)", field=field)
    return value


def require_texts(texts: Sequence[str], field: str, limit: int) -> None:
    """A many-texts call: at least one text, at most `limit`."""
    if not texts:
        raise InvalidArgument(f"{field} is empty; send at least one text", field=field)
    if len(texts) > limit:
        raise InvalidArgument(f"{field} has {len(texts)} texts; the limit is {limit}", field=field)


def decoding_options(options: Mapping[str, object]) -> tuple[ModelChoice, DecodingParams]:
    """A request's DecodingOptions by name (as any protocol delivers them): the model it
    names and its decoding parameters, checked."""
    name = require_name(str(options.get("model") or "").strip(), "options.model")
    version = int(options.get("model_version") or 0)  # type: ignore[call-overload]
    if version < 0:
        raise InvalidArgument(
            "options.model_version must not be negative (0 = the newest loaded version)",
            field="options.model_version",
        )
    params = DecodingParams.from_options(
        {key: value for key, value in options.items() if key not in _CHOICE_FIELDS}
    )
    return ModelChoice(name=name, version=version), params
