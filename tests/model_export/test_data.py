"""model_export.data: parsing, datasets, splits, manifest and error paths, on a real excerpt."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import lz4.frame
import pytest

from model_export.data import (
    DATASETS,
    SPLITS,
    DataError,
    dataset_sha256,
    load_split,
    prepare,
    split_of,
)
from model_export.data.cli import main
from model_export.data.deb822 import parse_description, read_stanzas
from model_export.data.sources import apt_command, locate
from model_export.data.summarize import MAX_SOURCE_WORDS, truncate_words

QUIET = {"log": lambda _: None}


def _all(out: Path, dataset: str) -> dict[str, list[dict]]:
    return {s: load_split(out, dataset, s) for s in SPLITS}


# --- parsing -------------------------------------------------------------------------------


def test_fixture_parses_into_stanzas(fixture_lists: Path) -> None:
    files = locate(fixture_lists, ("fr", "de", "it"))
    english = read_stanzas(files.english)
    assert len(english) >= 100
    assert all("Description-en" in s and "Description-md5" in s for s in english)
    assert {s["Package"] for s in read_stanzas(files.packages)} >= {s["Package"] for s in english}


def test_description_paragraphs_and_nbsp_break() -> None:
    desc = parse_description("synopsis\nfirst line\nsecond\n.\n\xa0\n * verbatim\n\xa0\nlast")
    assert desc.short == "synopsis"
    assert desc.paragraphs == ("first line second", "* verbatim", "last")


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["w"] * 10, " ".join(["w"] * 10)),  # short enough: unchanged
        (["w"] * 30 + ["end."] + ["w"] * 300, " ".join(["w"] * 30 + ["end."])),  # cut
        (["w"] * 300, None),  # no sentence end to cut at: dropped
    ],
)
def test_truncate_words(words: list[str], expected: str | None) -> None:
    assert truncate_words(" ".join(words)) == expected


# --- splits --------------------------------------------------------------------------------


def test_split_is_a_pure_function_of_the_name() -> None:
    # Pinned values: changing the rule would silently move packages between train and test.
    assert [split_of(p) for p in ("bash", "curl", "make", "tar", "rsync")] == [
        "train", "valid", "test", "valid", "test",
    ]  # fmt: skip


def test_splits_disjoint_and_consistent_across_datasets(prepared: Path) -> None:
    seen: dict[str, str] = {}
    for dataset in DATASETS:
        splits = _all(prepared, dataset)
        for split, records in splits.items():
            assert records, f"{dataset}/{split} is empty"
            for record in records:
                assert split_of(record["id"]) == split
                assert seen.setdefault(record["id"], split) == split
        train_sources = {r.get("source") for r in splits["train"]}
        if dataset != "answer":
            held_out = splits["valid"] + splits["test"]
            assert not any(r["source"] in train_sources for r in held_out)


# --- datasets ------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["translate-en-fr", "translate-en-de", "translate-en-it"])
def test_translate_pairs_are_clean_and_unique(prepared: Path, dataset: str) -> None:
    records = [r for rs in _all(prepared, dataset).values() for r in rs]
    pairs = [(r["source"], r["target"]) for r in records]
    assert len(pairs) == len(set(pairs))
    for source, target in pairs:
        assert 0 < len(source) <= 400 and 0 < len(target) <= 400
        assert source == " ".join(source.split()) and target == " ".join(target.split())


def test_summarize_sources_bounded(prepared: Path) -> None:
    records = [r for rs in _all(prepared, "summarize").values() for r in rs]
    assert all(len(r["source"].split()) <= MAX_SOURCE_WORDS for r in records)
    assert all(r["target"] and r["source"] != r["target"] for r in records)


def test_answers_grounded_and_unanswerable_present(prepared: Path) -> None:
    records = [r for rs in _all(prepared, "answer").values() for r in rs]
    unanswerable = [r for r in records if not r["answerable"]]
    assert all(r["answer"] in r["context"] and r["answer"] for r in records if r["answerable"])
    assert all(r["answer"] == "" for r in unanswerable)
    assert 0.05 < len(unanswerable) / len(records) < 0.3
    assert all(len(r["context"].split()) <= 130 for r in records)


# --- manifest and reproducibility ------------------------------------------------------------


def test_manifest_checksums_and_fingerprint(
    prepared: Path, tmp_path: Path, fixture_lists: Path
) -> None:
    manifest = json.loads((prepared / "manifest.json").read_text())
    for dataset in DATASETS:
        for split in SPLITS:
            entry = manifest["datasets"][dataset]["splits"][split]
            path = prepared / dataset / f"{split}.jsonl"
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["count"] == len(load_split(prepared, dataset, split))
    assert manifest["release"]["Codename"] == "bookworm"
    assert len(manifest["sources"]) == 6
    expected = hashlib.sha256((prepared / "manifest.json").read_bytes()).hexdigest()
    assert dataset_sha256(prepared) == expected

    again = tmp_path / "again"  # same inputs -> byte-identical files -> same fingerprint
    prepare(again, fixture_lists, ("fr", "de", "it"), **QUIET)
    assert dataset_sha256(again) == dataset_sha256(prepared)


def test_cli_languages_subset(tmp_path: Path, fixture_lists: Path) -> None:
    out = tmp_path / "out"
    assert (
        main(["prepare", "--out", str(out), "--lists-dir", str(fixture_lists), "--languages", "fr"])
        == 0
    )
    assert (out / "translate-en-fr").is_dir() and not (out / "translate-en-de").exists()


def test_apt_command_uses_private_sources(tmp_path: Path) -> None:
    lists = tmp_path / "debian-lists"
    (tmp_path / "debian-lists.apt").mkdir()
    cmd = apt_command(lists, ("fr",))
    assert "Acquire::Languages=en,fr" in cmd and f"Dir::State::Lists={lists}" in cmd
    assert "bookworm main" in (tmp_path / "debian-lists.apt" / "sources.list").read_text()


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"main_i18n_Translation-fr": b""}, "Translation-fr is empty"),
        ({"main_i18n_Translation-fr": None, "main_i18n_Translation-fr.lz4": b"not lz4"}, "corrupt"),
        ({"main_i18n_Translation-de": b"\xff\xfe garbage"}, "corrupt"),
        ({"main_i18n_Translation-it": b"hello world\n"}, "Translation-it:1: not a deb822"),
        (
            {"main_i18n_Translation-en": None},
            "no apt list matching *dists_bookworm_main_i18n_Translation-en",
        ),
        ({"main_binary-amd64_Packages": b"Package: x\n"}, "is it a Packages file"),
    ],
)
def test_bad_lists_raise_and_keep_previous_output(make_lists, tmp_path, overrides, message) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    with pytest.raises(DataError, match=message.replace("*", r"\*").replace(".", r"\.")):
        prepare(out, make_lists(**overrides), ("fr", "de", "it"), **QUIET)
    assert (out / "keep.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lists", "out"]  # no temp left


def test_lz4_lists_are_read(make_lists, tmp_path: Path, fixture_lists: Path) -> None:
    name = "main_i18n_Translation-fr"
    plain = (fixture_lists / f"deb.debian.org_debian_dists_bookworm_{name}").read_bytes()
    lists = make_lists(**{name: None, f"{name}.lz4": lz4.frame.compress(plain)})
    out = tmp_path / "out"
    prepare(out, lists, ("fr",), **QUIET)
    assert load_split(out, "translate-en-fr", "test")


def test_missing_lists_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        prepare(tmp_path / "out", tmp_path / "nowhere", ("fr",), **QUIET)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("delete", "train.jsonl is missing"),
        ("empty", "train.jsonl is empty"),
        ("garbage", "train.jsonl:1 is not valid JSON"),
        ("tamper", "does not match the sha256"),
    ],
)
def test_load_split_errors_name_the_file(prepared: Path, tmp_path: Path, damage, message) -> None:
    out = tmp_path / "copy"
    shutil.copytree(prepared, out)
    path = out / "summarize" / "train.jsonl"
    if damage == "delete":
        path.unlink()
    else:
        content = {"empty": "", "garbage": "{oops\n", "tamper": path.read_text()[:-50] + "\n"}
        path.write_text(content[damage])
        if damage != "tamper":
            (out / "manifest.json").unlink()  # isolate the JSON checks from the checksum check
    with pytest.raises(DataError, match=message):
        load_split(out, "summarize", "train")


def test_unknown_dataset_or_split(prepared: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset"):
        load_split(prepared, "translate-en-xx", "train")
    with pytest.raises(DataError, match="unknown split"):
        load_split(prepared, "summarize", "dev")
