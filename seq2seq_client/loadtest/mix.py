"""The request mix: a JSON-lines file of real inputs, each line one request, checked whole
before any load is sent.

    {"rpc": "Translate", "text": "...", "target_language": "fr", "options": {"beam_size": 4}}
    {"rpc": "Summarize", "text": "...", "weight": 2}
    {"rpc": "Answer", "question": "...", "context": "..."}

`options` takes the fields of `seq2seq_client.DecodeOptions` (model, model_version, beam_size,
n_best, max_output_tokens, length_penalty, return_attention, return_scores); `weight` (a whole
number, default 1) is how many times a line is sent per pass over the file; `id` is free text.
Requests go out in a fixed interleaved order (smooth weighted round robin over the lines).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from seq2seq_client.tasks import TASKS
from seq2seq_client.types import DecodeOptions, ModelInfo

# From the task table: rpc -> task, the fields a line must have, the ones it may have.
RPC_TASKS = {spec.rpc: spec.name for spec in TASKS.values()}
REQUIRED = {spec.rpc: (*spec.text_fields, *spec.language_fields[1:]) for spec in TASKS.values()}
OPTIONAL_TEXT = {spec.rpc: spec.language_fields[:1] for spec in TASKS.values()}
COMMON = ("rpc", "options", "weight", "id")
MAX_WEIGHT = 1000  # per line; keeps one pass over the file (the sum of weights) bounded
# name -> "int" / "float" / "str" / "bool" (an optional field takes its value's type)
OPTION_TYPES = {
    f.name: str(f.type).replace(" | None", "") for f in dataclasses.fields(DecodeOptions)
}
DEFAULT_MIX = "default"  # the --mix value that names the bundled mix


class MixError(ValueError):
    """The mix file cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class MixEntry:
    """One line of the mix: the RPC and its inputs."""

    rpc: str  # "Translate", "Summarize" or "Answer"
    text: str = ""  # Translate, Summarize
    question: str = ""  # Answer
    context: str = ""  # Answer
    source_language: str = ""  # Translate; "" = the server's default ("en")
    target_language: str = ""  # Translate
    options: DecodeOptions = field(default_factory=DecodeOptions)
    weight: int = 1  # times sent per pass over the mix
    line: int = 0  # line number in the file (0 = built in code)


@dataclass(frozen=True)
class Mix:
    source: str  # the file it came from, for reports
    entries: tuple[MixEntry, ...]

    def order(self) -> tuple[int, ...]:
        """Entry indexes of one pass: each entry `weight` times, interleaved (smooth weighted
        round robin), so every stretch of the run sees the mix's proportions."""
        weights = [e.weight for e in self.entries]
        total = sum(weights)
        current = [0] * len(weights)
        picks: list[int] = []
        for _ in range(total):
            for i, w in enumerate(weights):
                current[i] += w
            best = max(range(len(weights)), key=current.__getitem__)
            current[best] -= total
            picks.append(best)
        return tuple(picks)

    def rpcs(self) -> tuple[str, ...]:
        return tuple(sorted({e.rpc for e in self.entries}))


def default_mix_path() -> Path:
    """The bundled mix: held-out inputs of the three default models (package data)."""
    return Path(str(resources.files("seq2seq_client.loadtest") / "mixes" / "default.jsonl"))


def load_mix(path: str | Path = DEFAULT_MIX) -> Mix:
    """Read and check every line; raises MixError naming the file and the first bad line."""
    file = default_mix_path() if str(path) == DEFAULT_MIX else Path(path)
    try:
        content = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise MixError(f"cannot read mix file {str(file)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise MixError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_mix(content, str(file))


def parse_mix(content: str, source: str) -> Mix:
    entries = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(parse_line(line, number))
        except MixError as exc:
            raise MixError(f"{source}:{number}: {exc}") from None
    if not entries:
        raise MixError(f"{source}: no requests (one JSON object per line expected)")
    return Mix(source=source, entries=tuple(entries))


def parse_line(line: str, number: int = 0) -> MixEntry:
    """One JSON object -> MixEntry; MixError says what is wrong (without file and line)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MixError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise MixError(f"expected a JSON object, got {type(record).__name__}")
    rpc = record.get("rpc")
    if rpc not in REQUIRED:
        known = ", ".join(REQUIRED)
        shown = "no 'rpc' field" if rpc is None else f"unknown rpc {rpc!r}"
        raise MixError(f"{shown} (known: {known})")
    allowed = (*COMMON, *REQUIRED[rpc], *OPTIONAL_TEXT[rpc])
    unknown = sorted(set(record) - set(allowed))
    if unknown:
        raise MixError(f"unknown field {unknown[0]!r} for {rpc} (allowed: {', '.join(allowed)})")
    texts: dict[str, str] = {}
    for name in (*REQUIRED[rpc], *OPTIONAL_TEXT[rpc]):
        if name not in record:
            if name in REQUIRED[rpc]:
                raise MixError(f"{rpc} needs a {name!r} field")
            continue
        if not isinstance(record[name], str):
            raise MixError(f"{name!r} must be a string, not {_json_type(record[name])}")
        texts[name] = record[name]
    if "id" in record and not isinstance(record["id"], str | int):
        raise MixError(f"'id' must be a string or a number, not {_json_type(record['id'])}")
    return MixEntry(
        rpc=rpc,
        options=_options(record.get("options", {})),
        weight=_weight(record.get("weight", 1)),
        line=number,
        **texts,
    )


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WEIGHT:
        raise MixError(f"'weight' must be a whole number from 1 to {MAX_WEIGHT}, not {value!r}")
    return value


def _options(value: Any) -> DecodeOptions:
    if not isinstance(value, dict):
        raise MixError(f"'options' must be an object, not {_json_type(value)}")
    checked: dict[str, Any] = {}
    for name, option in value.items():
        kind = OPTION_TYPES.get(name)
        if kind is None:
            raise MixError(f"unknown option {name!r} (known: {', '.join(OPTION_TYPES)})")
        checked[name] = _option_value(name, kind, option)
    return DecodeOptions(**checked)


def _option_value(name: str, kind: str, value: Any) -> Any:
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    strings = isinstance(value, list | dict) and all(
        isinstance(v, str) for v in (value.values() if isinstance(value, dict) else value)
    )
    if kind == "tuple[str, ...]" and isinstance(value, list) and strings:
        return tuple(value)
    if kind == "tuple[tuple[str, str], ...]" and isinstance(value, dict) and strings:
        return tuple(sorted(value.items()))
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if (
        kind == "float"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ):
        return float(value)
    wanted = {
        "int": "a whole number >= 0",
        "float": "a finite number",
        "tuple[str, ...]": "a list of strings",
        "tuple[tuple[str, str], ...]": "an object of strings",
    }.get(kind, f"a {kind}")
    raise MixError(f"option {name!r} must be {wanted}, not {json.dumps(value)}")


def missing_models(mix: Mix, models: Sequence[ModelInfo]) -> list[str]:
    """What the mix asks for that the server does not hold (one line each, first use's line)."""
    problems: dict[str, int] = {}
    for entry in mix.entries:
        problem = _missing(entry, models)
        if problem is not None:
            problems.setdefault(problem, entry.line)
    return [f"line {line}: {problem}" for problem, line in problems.items()]


def _missing(entry: MixEntry, models: Sequence[ModelInfo]) -> str | None:
    task = RPC_TASKS[entry.rpc]
    name, version = entry.options.model, entry.options.model_version
    if name:
        named = [m for m in models if m.name == name]
        if not named:
            loaded = ", ".join(sorted({m.name for m in models})) or "none"
            return f"no model named {name!r} (loaded: {loaded})"
        if version and not any(m.version == version for m in named):
            return f"model {name!r} has no version {version}"
        if named[0].task != task:
            return f"model {name!r} is a {named[0].task} model, not {task}"
        return None
    if entry.rpc == "Translate":
        pair = ((entry.source_language or "en").lower(), entry.target_language.lower())
        if not any(
            m.task == task and (m.source_language, m.target_language) == pair for m in models
        ):
            return f"no translate model for {pair[0]}->{pair[1]}"
        return None
    if not any(m.task == task for m in models):
        return f"no {task} model is loaded ({entry.rpc})"
    return None
