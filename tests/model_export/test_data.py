"""model_export.data: parsing, datasets, splits, manifest and error paths, on a real excerpt."""

from __future__ import annotations

import hashlib
import json
import re
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
from model_export.data.answer import FIELDS, MAX_CONTEXT_WORDS
from model_export.data.cli import main
from model_export.data.deb822 import parse_description, read_stanzas
from model_export.data.newer import prepare_newer
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
    assert all(len(r["context"].split()) <= MAX_CONTEXT_WORDS for r in records)


def _word_runs(template: str, n: int = 4) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z{}']+", template.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_unseen_phrasings_only_in_test_and_twins_of_trained_questions(prepared: Path) -> None:
    splits = _all(prepared, "answer")
    assert {r["phrasing"] for r in splits["train"] + splits["valid"]} == {"trained"}
    test = splits["test"]
    trained = {(r["id"], r["field"]): r for r in test if r["phrasing"] == "trained"}
    unseen = [r for r in test if r["phrasing"] == "unseen"]
    assert unseen and len(unseen) == len(trained)
    for twin in unseen:
        original = trained[(twin["id"], twin["field"])]
        assert (twin["context"], twin["answer"]) == (original["context"], original["answer"])
        assert twin["question"] != original["question"]
    for name, field in FIELDS.items():  # no unseen wording shares four words with a trained one
        trained_runs = set().union(*(_word_runs(t) for t in field.trained))
        for template in field.unseen:
            assert not _word_runs(template) & trained_runs, (name, template)
    seen_questions = {
        r["question"] for rs in splits.values() for r in rs if r["phrasing"] == "trained"
    }
    assert not seen_questions & {r["question"] for r in unseen}


def test_answer_questions_and_contexts_vary(prepared: Path) -> None:
    records = [r for rs in _all(prepared, "answer").values() for r in rs]
    fields = {r["field"] for r in records}
    assert {"maintainer", "homepage", "section", "summary", "license"} <= fields
    assert {r["field"] for r in records if not r["answerable"]} >= {"license"}
    assert all(not r["answerable"] for r in records if r["field"] == "license")
    contexts = {r["context"] for r in records}
    assert any(c.startswith("Package: ") for c in contexts)  # "Field: value." style
    assert any(" is a Debian package" in c for c in contexts)  # prose
    by_field = {}
    for r in records:
        by_field.setdefault(r["field"], set()).add(r["question"].replace(r["id"], "{p}"))
    assert all(len(templates) >= 2 for templates in by_field.values()), by_field


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


# --- held-out records from a newer suite -----------------------------------------------------


def _newer_suite(fixture_lists: Path, root: Path) -> tuple[Path, Path, set[str]]:
    """The fixture as a 'trixie' suite, and a base suite that knows only every other
    package of it. -> (base lists, newer lists, the names only the newer suite has)."""
    base, newer = root / "base", root / "newer"
    shutil.copytree(fixture_lists, base)
    newer.mkdir()
    for path in fixture_lists.iterdir():
        if path.name.endswith(("-en", "Packages", "Release")):
            shutil.copy(path, newer / path.name.replace("bookworm", "trixie"))
    packages = next(base.glob("*Packages"))
    stanzas = packages.read_text(encoding="utf-8").strip("\n").split("\n\n")
    packages.write_text("\n\n".join(stanzas[::2]) + "\n", encoding="utf-8")
    only_newer = {s.split("\n")[0].removeprefix("Package: ") for s in stanzas[1::2]}
    return base, newer, only_newer


def test_newer_suite_holds_only_packages_of_no_split(fixture_lists: Path, tmp_path: Path) -> None:
    base, newer, only_newer = _newer_suite(fixture_lists, tmp_path)
    out = tmp_path / "newer-data"
    manifest = prepare_newer(out, base, newer, suite="trixie", **QUIET)
    assert "trixie" in manifest["split_rule"]
    answer = load_split(out, "answer", "test")
    summarize = load_split(out, "summarize", "test")
    assert {r["id"] for r in answer} <= only_newer and {r["id"] for r in summarize} <= only_newer
    assert len({r["id"] for r in answer}) > len(only_newer) // 2
    trained = [r for r in answer if r["phrasing"] == "trained"]
    assert len(trained) * 2 == len(answer)  # every question also has an unseen wording
    assert main(["newer", "--out", str(out), "--suite", "bookworm", "--base-lists", str(base),
                 "--lists-dir", str(newer)]) == 2  # fmt: skip
