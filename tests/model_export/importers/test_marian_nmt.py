"""`seq2seq-export import` of Marian NMT folders (random-weight models written in Marian's own
formats): every supported layout imports and passes the importer's checks against the
PyTorch reference; what is not supported or broken is refused in one line, exit 2, with
nothing written."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from model_export.cli import main
from model_export.importers.importer import ImportResult
from model_export.importers.marian_nmt.container import (
    MODEL_YML,
    Item,
    float_item,
    read_items,
    text_item,
    write_bin,
)
from model_export.importers.marian_nmt.importer import import_marian_folder
from service.bundle import read_manifest
from service.engine import shortlist as lexical
from service.engine.offline import Seq2SeqEngine
from tests.model_export.importers.marian_nmt_factory import Shape, make_marian_folder

MODEL = "model.enpt.intgemm.alphas.bin"
LAYOUTS = {
    # the Bergamot students' layout: int8 weights with activation multipliers, SSRU decoder
    "ssru-int8": Shape(),
    # a transformer decoder, pre-norm, swish, untied embeddings, float32 .npz
    "transformer-npz": Shape(
        decoder="transformer", activation="swish", preprocess="n", tied="none", storage="float-npz"
    ),
    # upstream marian-dev's intgemm16 type numbers, gelu, no shortlist
    "transformer-int16": Shape(
        decoder="transformer", activation="gelu", storage="upstream-int16", shortlist=False
    ),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("marian-nmt")
    return {name: make_marian_folder(root / name, shape) for name, shape in LAYOUTS.items()}


@pytest.fixture(scope="module")
def bundles(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ImportResult]:
    repo = tmp_path_factory.mktemp("marian-nmt-repo")
    return {
        name: import_marian_folder(folder, repo=repo, name=name, threads=1, log=lambda _: None)
        for name, folder in folders.items()
    }


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_imports_and_matches_the_reference(
    layout: str, bundles: dict[str, ImportResult]
) -> None:
    result = bundles[layout]
    manifest = read_manifest(result.bundle_dir)
    checks = manifest.training["checks"]
    assert isinstance(checks, dict)
    # the importer refuses differences; these say what it checked
    assert checks["greedy_mismatches"] == 0
    assert float(checks["max_abs_diff_log_probs"]) <= 1e-3  # type: ignore[arg-type]
    assert manifest.architecture == "marian_nmt"
    assert manifest.imported_from is not None and manifest.imported_from.format == "marian"
    assert manifest.languages is not None and manifest.languages.target == "pt"
    assert manifest.precision == ("int8" if layout == "ssru-int8" else "fp32")
    assert manifest.decoding.max_length_factor == 2.5
    if LAYOUTS[layout].shortlist:
        assert manifest.shortlist is not None and manifest.decoding.shortlist is True
        assert checks["shortlist_greedy_mismatches"] == 0
    else:
        assert manifest.shortlist is None and manifest.decoding.shortlist is None


def test_int8_bundle_keeps_the_int8_weights(
    folders: dict[str, Path], bundles: dict[str, ImportResult], tmp_path: Path
) -> None:
    """The int8 bundle runs onnxruntime's MatMulIntegerToFloat on the model's own int8 matrices,
    stored byte for byte as Marian stores them (transposed back); an fp32 variant of the
    same folder holds them dequantized."""
    bundle = bundles["ssru-int8"].bundle_dir
    decoder = onnx.load(str(bundle / "decoder.onnx"), load_external_data=False)
    assert "MatMulIntegerToFloat" in {node.op_type for node in decoder.graph.node}
    stored = {t.name: t for t in decoder.graph.initializer}
    tensor = stored["decoder_l1_rnn_W.q8"]
    assert tensor.data_type == onnx.TensorProto.INT8
    place = {entry.key: entry.value for entry in tensor.external_data}
    raw = (bundle / place["location"]).read_bytes()
    start = int(place["offset"])
    values = np.frombuffer(raw[start : start + int(place["length"])], np.int8).reshape(32, 32)
    original = read_items(folders["ssru-int8"] / MODEL)["decoder_l1_rnn_W"].values()
    assert np.array_equal(values, original)
    fp32 = import_marian_folder(
        folders["ssru-int8"], repo=tmp_path, name="f", precision="fp32", threads=1,
        log=lambda _: None,
    )  # fmt: skip
    floats = onnx.load(str(fp32.bundle_dir / "decoder.onnx"), load_external_data=False)
    assert "MatMulIntegerToFloat" not in {node.op_type for node in floats.graph.node}
    assert read_manifest(fp32.bundle_dir).precision == "fp32"


@pytest.mark.parametrize("fraction", [1.0, 0.0], ids=["shortlist-step", "narrowed-full-step"])
@pytest.mark.parametrize("layout", ["ssru-int8", "transformer-npz"])
def test_shortlist_outputs_do_not_depend_on_the_batch(
    layout: str, fraction: float, bundles: dict[str, ImportResult], monkeypatch
) -> None:
    """Each row decodes over its own request's selection: in one continuous batch, mixed
    with requests that switch the shortlist off or search a beam, every output equals
    the one it gets alone; through the shortlist step and through a full step narrowed
    row by row alike (the engine picks by the union's size)."""
    monkeypatch.setattr(lexical, "GRAPH_MAX_FRACTION", fraction)
    engine = Seq2SeqEngine(bundles[layout].bundle_dir, intra_op_threads=1, max_batch_size=8)
    texts = ["The weather is nice today.", "Lua bindings for Pure Data", "A tool to compress files"]
    alone = {
        (text, shortlist): engine.generate_batch([text], shortlist=shortlist)[0].best.token_ids
        for text in texts
        for shortlist in (True, False)
    }
    mixed = [(t, s) for t in texts for s in (True, False)]
    together = [engine.generate_batch([text], shortlist=shortlist)[0] for text, shortlist in mixed]
    assert [r.best.token_ids for r in together] == [alone[k] for k in mixed]
    batch = engine.generate_batch(texts * 2, shortlist=True)
    assert [r.best.token_ids for r in batch] == [alone[(t, True)] for t in texts * 2]
    beams = engine.generate_batch(texts, shortlist=True, beam_size=3)
    assert all(r.best.token_ids for r in beams)


# --- refusals ----------------------------------------------------------------------------


def _rewrite(folder: Path, change: Callable[[dict[str, Item]], None]) -> None:
    items = read_items(folder / MODEL)
    change(items)
    write_bin(folder / MODEL, list(items.values()))


def _config(change: Callable[[dict], None]) -> Callable[[dict[str, Item]], None]:
    def apply(items: dict[str, Item]) -> None:
        config = yaml.safe_load(items[MODEL_YML].text())
        change(config)
        items[MODEL_YML] = text_item(MODEL_YML, yaml.safe_dump(config))

    return apply


def _retype(name: str, code: int) -> Callable[[dict[str, Item]], None]:
    def apply(items: dict[str, Item]) -> None:
        item = items[name]
        items[name] = Item(item.name, code, item.shape, item.data)

    return apply


def _break_file(name: str, how: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / name).write_bytes(how((folder / name).read_bytes()))

    return apply


def _two_models_no_config(folder: Path) -> None:
    shutil.copy(folder / MODEL, folder / "model.ende.bin")
    (folder / "config.intgemm8bitalpha.yml").unlink()


REFUSALS: dict[str, tuple[Callable[[Path], None], str]] = {
    "cpu-specific type": (
        lambda f: _rewrite(f, _retype("encoder_l1_self_Wq", 0x1801)),
        "packed8avx2",
    ),
    "encrypted": (_break_file(MODEL, lambda b: struct.pack("<Q", 2) + b[8:]), "encrypted"),
    "truncated": (_break_file(MODEL, lambda b: b[: len(b) // 2]), "truncated"),
    "unsupported cell": (
        lambda f: _rewrite(f, _config(lambda c: c.update({"dec-cell": "lstm"}))),
        "dec-cell",
    ),
    "average attention": (
        lambda f: _rewrite(
            f, _config(lambda c: c.update({"transformer-decoder-autoreg": "average-attention"}))
        ),
        "transformer-decoder-autoreg",
    ),
    "missing parameter": (
        lambda f: _rewrite(f, lambda items: items.pop("decoder_l2_rnn_Wf")),
        "decoder_l2_rnn_Wf",
    ),
    "unknown parameter": (
        lambda f: _rewrite(
            f, lambda items: items.update(x=float_item("decoder_l1_rnn_gamma", np.ones((1, 32))))
        ),
        "decoder_l1_rnn_gamma",
    ),
    "no config item": (lambda f: _rewrite(f, lambda items: items.pop(MODEL_YML)), MODEL_YML),
    "vocabulary size": (
        lambda f: _rewrite(f, _config(lambda c: c.update({"dim-vocabs": [97, 97]}))),
        "dim-vocabs",
    ),
    "no vocabulary": (lambda f: (f / "vocab.enpt.spm").unlink(), "vocab.enpt.spm"),
    "corrupted shortlist": (
        _break_file("lex.50.50.enpt.s2t.bin", lambda b: b[:-4] + bytes(4)),
        "checksum",
    ),
    "two models": (_two_models_no_config, "several Marian model files"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_broken_or_unsupported_folders_are_refused(
    case: str,
    folders: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "folder"
    shutil.copytree(folders["ssru-int8"], folder)
    damage, expected = REFUSALS[case]
    damage(folder)
    repo = tmp_path / "repo"
    code = main(["import", str(folder), "--repo", str(repo), "--name", "x", "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("seq2seq-export: error: "), err
    assert expected in err[0]
    assert not repo.exists()  # nothing written, not even the repository folder
