"""The mix file: every line checked before any load, errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq_client.loadtest.mix import (
    DEFAULT_MIX,
    Mix,
    MixEntry,
    MixError,
    default_mix_path,
    load_mix,
    missing_models,
)
from seq2seq_client.types import DecodeOptions, ModelInfo
from tests.loadtest import default_mix
from tests.loadtest.conftest import translate, write_mix


def test_the_bundled_mix_is_the_heldout_inputs_of_the_five_models() -> None:
    assert default_mix_path().read_text(encoding="utf-8") == default_mix.render(), (
        "regenerate it: python -m tests.loadtest.default_mix"
    )
    mix = load_mix(DEFAULT_MIX)
    assert mix.rpcs() == ("Answer", "Summarize", "Translate")
    assert len(mix.entries) == 150
    languages = [e.target_language for e in mix.entries[:3]]
    assert [e.rpc for e in mix.entries[:5]] == ["Translate"] * 3 + ["Summarize", "Answer"]
    assert languages == ["fr", "de", "it"]  # interleaved
    assert {e.options.beam_size for e in mix.entries} == {0, 4}
    assert {e.options.max_output_tokens for e in mix.entries} == {0, 16}


def test_a_valid_line_of_each_rpc(tmp_path: Path) -> None:
    path = write_mix(
        tmp_path,
        [
            translate(source_language="en", options={"beam_size": 4, "length_penalty": 1}),
            {"rpc": "Summarize", "text": "A long text.", "weight": 3, "id": "x"},
            "",
            {"rpc": "Answer", "question": "Who?", "context": "Him.", "options": {"n_best": 1}},
        ],
    )
    mix = load_mix(path)
    assert [e.line for e in mix.entries] == [1, 2, 4]  # blank lines skipped, numbers kept
    assert mix.entries[0] == MixEntry(
        rpc="Translate",
        text="Lua bindings for Pure Data",
        source_language="en",
        target_language="fr",
        options=DecodeOptions(beam_size=4, length_penalty=1.0),
        line=1,
    )
    assert mix.entries[1].weight == 3
    assert mix.entries[2].question == "Who?" and mix.entries[2].context == "Him."


BAD_LINES = [
    ('{"rpc": "Translate", "text": "x"', "not valid JSON"),
    ('["Translate"]', "expected a JSON object, got list"),
    ({"rpc": "Transcribe", "text": "x"}, "unknown rpc 'Transcribe' (known: Translate"),
    ({"text": "x"}, "no 'rpc' field"),
    ({"rpc": "Translate", "text": "x"}, "Translate needs a 'target_language' field"),
    ({"rpc": "Answer", "question": "Who?"}, "Answer needs a 'context' field"),
    ({"rpc": "Summarize", "text": 3}, "'text' must be a string, not a number"),
    ({"rpc": "Summarize", "txt": "x"}, "unknown field 'txt' for Summarize"),
    (translate(options={"beam": 4}), "unknown option 'beam'"),
    (translate(options={"beam_size": "4"}), "option 'beam_size' must be a whole number >= 0"),
    (translate(options={"beam_size": -1}), "option 'beam_size' must be a whole number >= 0"),
    (translate(options={"return_scores": 1}), "option 'return_scores' must be a bool"),
    (translate(options={"beam_size": True}), "option 'beam_size' must be a whole number"),
    (translate(options=[4]), "'options' must be an object, not a list"),
    (translate(weight=0), "'weight' must be a whole number from 1 to 1000"),
    (translate(weight=1.5), "'weight' must be a whole number"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES, ids=[m for _, m in BAD_LINES])
def test_a_bad_line_names_the_file_and_the_line(tmp_path: Path, line: object, message: str) -> None:
    path = write_mix(tmp_path, [translate(), "", line, translate()])
    with pytest.raises(MixError) as error:
        load_mix(path)
    assert str(error.value).startswith(f"{path}:3: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "no requests"), (b"\n  \n", "no requests"), (b"\xff\xfe", "not UTF-8")],
)
def test_an_empty_or_binary_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "mix.jsonl"
    path.write_bytes(content)
    with pytest.raises(MixError, match=message):
        load_mix(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MixError, match="cannot read mix file"):
        load_mix(tmp_path / "nope.jsonl")


def _entry(rpc: str, weight: int) -> MixEntry:
    return MixEntry(rpc=rpc, text="x", target_language="fr", weight=weight)


def test_weights_interleave_in_proportion() -> None:
    mix = Mix("m", (_entry("Translate", 3), _entry("Summarize", 1), _entry("Summarize", 2)))
    order = mix.order()
    assert len(order) == 6 and sorted(order) == [0, 0, 0, 1, 2, 2]
    assert order[:2] != (0, 0) and order[-2:] != (0, 0)  # spread out, not in a block
    assert Mix("m", (_entry("Translate", 1),) * 4).order() == (0, 1, 2, 3)  # equal: file order


def _model(name: str, task: str, source: str = "", target: str = "", version: int = 1):
    return ModelInfo(
        name=name,
        version=version,
        task=task,
        source_language=source,
        target_language=target,
        architecture="rnn",
        attention="general",
        precision="fp32",
        provider="CPUExecutionProvider",
        max_source_tokens=96,
        max_target_tokens=96,
    )


MODELS = [_model("translate-en-fr", "translate", "en", "fr"), _model("summarize-en", "summarize")]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (MixEntry("Translate", text="x", target_language="fr"), None),
        (MixEntry("Summarize", text="x"), None),
        (MixEntry("Translate", text="x", target_language="de"), "no translate model for en->de"),
        (MixEntry("Answer", question="q", context="c"), "no answer model is loaded"),
        (
            MixEntry("Summarize", text="x", options=DecodeOptions(model="big")),
            "no model named 'big'",
        ),
        (
            MixEntry("Summarize", text="x", options=DecodeOptions(model="translate-en-fr")),
            "is a translate model, not summarize",
        ),
        (
            MixEntry(
                "Summarize", text="x", options=DecodeOptions(model="summarize-en", model_version=2)
            ),
            "has no version 2",
        ),
    ],
)
def test_what_the_server_lacks(entry: MixEntry, problem: str | None) -> None:
    found = missing_models(Mix("m", (entry,)), MODELS)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0]
