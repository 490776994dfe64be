"""model_export.export, parity and build: ONNX contract, parity, and a valid bundle."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from model_export.build import BuildError, build_bundle
from model_export.cli import main
from model_export.export import export_onnx
from model_export.model import Seq2Seq
from model_export.parity import ParityError, check_parity
from model_export.tokenizer import encode
from model_export.train import Example, train
from service.bundle import (
    DECODER_FILE,
    ENCODER_FILE,
    read_manifest,
    verify_checksums,
)
from tests.model_export.factories import (
    make_answer_records,
    make_pairs,
    tiny_model_config,
    tiny_tokenizer,
    tiny_train_config,
    write_prepared,
)

TINY_MODEL = {"embedding_size": 16, "hidden_size": 32, "vocab_size": 200, "dropout": 0.0}
TINY_TRAIN = {"max_steps": 40, "eval_every": 20, "batch_sentences": 16, "lr": 1e-2}


@pytest.fixture(scope="module", params=["gru", "lstm", "gru-hard"])
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Seq2Seq, list[Example], Path]:
    """A tiny model trained for a few steps and exported; -> (model, test examples, dir)."""
    torch.manual_seed(0)
    tok = tiny_tokenizer()
    cell, _, kind = request.param.partition("-")
    cfg = tiny_model_config(tok.get_vocab_size(), cell=cell, attention_kind=kind or "soft")

    def examples(records: list[dict]) -> list[Example]:
        return [
            Example(
                src=encode(tok, r["source"], max_length=16),
                tgt=encode(tok, r["target"], max_length=16),
            )
            for r in records
        ]

    work = tmp_path_factory.mktemp("export")
    model = Seq2Seq(cfg)
    train(
        model,
        examples(make_pairs(50)),
        examples(make_pairs(8, seed=5)),
        tiny_train_config(work / "ckpt"),
    )
    export_onnx(model, work / "onnx")
    return model, examples(make_pairs(20, seed=7)), work / "onnx"


def test_graphs_follow_the_bundle_contract(trained) -> None:
    model, _, onnx_dir = trained
    lstm = model.config.cell == "lstm"

    def io(path: Path) -> tuple[dict[str, list], dict[str, list]]:
        graph = onnx.load(str(path)).graph

        def dims(values) -> dict[str, list]:
            return {
                v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
                for v in values
            }

        return dims(graph.input), dims(graph.output)

    enc_in, enc_out = io(onnx_dir / ENCODER_FILE)
    assert enc_in == {"src_ids": ["batch", "src_len"], "src_lengths": ["batch"]}
    states = ["hidden", "cell", "context"] if lstm else ["hidden", "context"]
    assert enc_out == {
        "memory": ["batch", "src_len", 32],
        **{f"init_{s}": ["batch", 32] for s in states},
    }
    dec_in, dec_out = io(onnx_dir / DECODER_FILE)
    assert list(dec_in) == ["prev_ids", "memory", "src_mask", *(f"state_{s}" for s in states)]
    assert list(dec_out) == ["log_probs", "attention", *(f"new_state_{s}" for s in states)]
    assert all(dec_out[f"new_state_{s}"] == ["batch", 32] for s in states)
    assert dec_out["attention"] == ["batch", "src_len"]
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in onnx.load(str(onnx_dir / DECODER_FILE)).graph.input
    }
    assert (
        types["prev_ids"] == onnx.TensorProto.INT64 and types["src_mask"] == onnx.TensorProto.BOOL
    )


def test_parity_passes_and_catches_a_drifted_model(trained) -> None:
    model, test_set, onnx_dir = trained
    report = check_parity(model, onnx_dir, test_set, steps=6, batch_size=8, greedy_examples=20)
    assert report["max_abs_diff_log_probs"] < 1e-5
    assert report["greedy_mismatches"] == 0 and report["greedy_examples"] == 20
    drifted = Seq2Seq(model.config)
    drifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        drifted.decoder.combine.weight.mul_(1.1)
    with pytest.raises(ParityError, match="disagree"):
        check_parity(drifted, onnx_dir, test_set, steps=4, batch_size=8, greedy_examples=8)


@pytest.mark.parametrize(("task", "cell"), [("translate", "gru"), ("answer", "lstm")])
def test_build_writes_a_valid_bundle(tmp_path: Path, task: str, cell: str) -> None:
    if task == "translate":
        dataset, records = "translate-en-fr", make_pairs
    else:
        dataset, records = "answer", make_answer_records
    data = write_prepared(
        tmp_path / "prepared",
        dataset,
        {"train": records(60), "valid": records(10, seed=1), "test": records(12, seed=2)},
    )
    result = build_bundle(
        task=task,
        languages="en-fr" if task == "translate" else None,
        data_dir=data,
        repo=tmp_path / "models",
        version=3,
        minutes=0.5,
        model_overrides=TINY_MODEL | {"cell": cell},
        train_overrides=TINY_TRAIN,
        work_dir=tmp_path / "work",
        progress=False,
        log=lambda _: None,
    )
    name = "translate-en-fr" if task == "translate" else "answer-en"
    assert result.bundle_dir == tmp_path / "models" / name / "3"
    manifest = read_manifest(result.bundle_dir)
    verify_checksums(result.bundle_dir, manifest)
    assert manifest.task == task and manifest.cell == cell and manifest.precision == "fp32"
    states = ["hidden", "cell", "context"] if cell == "lstm" else ["hidden", "context"]
    assert manifest.schema_version == 1  # batch axes only: an older server loads it too
    assert [(s.name, s.batch_axis) for s in manifest.states] == [(s, 0) for s in states]
    assert manifest.evaluation is not None and manifest.evaluation.num_examples == 12
    assert manifest.evaluation.data.counts == {"train": 60, "valid": 10, "test": 12}
    if task == "translate":
        assert manifest.languages is not None and manifest.languages.target == "fr"
        assert set(manifest.evaluation.metrics) == {"bleu", "chrf"}
        assert "copy_source" in manifest.evaluation.baselines
    else:
        assert (manifest.special_tokens.sep_id, manifest.special_tokens.no_answer_id) == (4, 5)
        answerability = {"noans_precision", "noans_recall"}
        assert set(manifest.evaluation.metrics) == {"exact_match", "f1", *answerability}
    assert manifest.training["parity"]["greedy_mismatches"] == 0  # type: ignore[index]

    def rebuild(version: int, **options: object):
        return build_bundle(
            task=task,
            languages="en-fr" if task == "translate" else None,
            data_dir=data,
            repo=tmp_path / "models",
            version=version,
            log=lambda _: None,
            **options,  # type: ignore[arg-type]
        )

    with pytest.raises(BuildError, match="already exists"):
        rebuild(3)
    # a finished training is exported and scored again without training
    tiny = TINY_MODEL | {"cell": cell}
    again = rebuild(4, model_overrides=tiny, work_dir=tmp_path / "work", resume=True).manifest
    first = manifest.training["run"]
    assert again.training["run"] == first
    assert again.evaluation is not None and again.evaluation.metrics == manifest.evaluation.metrics
    assert again.files["tokenizer.json"] == manifest.files["tokenizer.json"]
    # ... or trained further from its best weights: the step count and history continue
    more = rebuild(
        6,
        model_overrides=tiny,
        train_overrides=TINY_TRAIN | {"max_steps": 2 * first["steps"]},  # type: ignore[operator]
        work_dir=tmp_path / "work",
        continue_training=True,
    ).manifest.training["run"]
    assert more["steps"] == 2 * first["steps"]  # type: ignore[index]
    assert more["best_valid_loss"] <= first["best_valid_loss"]  # type: ignore[index]
    assert more["seconds"] > first["seconds"]  # type: ignore[index]
    with pytest.raises(BuildError, match=r"no finished training .*best\.pt"):
        rebuild(5, work_dir=tmp_path / "elsewhere", resume=True)


def test_cli_reports_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--task", "translate", "--data", str(tmp_path)]) == 2
    assert "needs --languages like 'en-fr'" in capsys.readouterr().err
    missing = ["--data", str(tmp_path / "none"), "--repo", str(tmp_path / "models")]
    assert main(["build", "--task", "summarize", *missing]) == 2
    assert "missing" in capsys.readouterr().err
