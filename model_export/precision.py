"""fp16 and int8 variants of an fp32 bundle, with their measured size and quality change.

fp16: every float weight and activation in fp16 (onnxruntime's float16 converter), graph
inputs and outputs kept fp32 so the server feeds a variant exactly like the original; meant
for the CUDA provider (on the CPU provider most fp16 nodes run through inserted casts).
int8: `onnxruntime.quantization.quantize_dynamic` (int8 weights, activations quantized per
call): MatMul/Gemm and the embedding Gather; the GRU/LSTM op is not covered (DESIGN §11), so
the encoder's recurrent weights stay fp32. Dynamic int8 runs on the CPU provider only.

The variant is a complete bundle (same tokenizer, same graph names) that is parity-checked
against its source with onnxruntime and re-scored on the same test records.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx

from model_export import bundle_eval
from model_export import evaluate as ev
from model_export.ort_model import OrtSeq2Seq, pad_batch
from model_export.tokenizer import encode_batch, load_tokenizer
from service.bundle import (
    DECODER_FILE,
    ENCODER_FILE,
    TOKENIZER_FILE,
    BundleManifest,
    Precision,
    files_bytes,
    read_manifest,
    write_manifest,
)

GRAPHS = (ENCODER_FILE, DECODER_FILE)


class VariantError(RuntimeError):
    """A variant could not be made; the message names the bundle and the reason."""


def _untie_shared_initializers(model: onnx.ModelProto) -> None:
    """Give every consumer of a shared initializer its own copy.

    The tied embedding is read by a Gather (lookup) and a Gemm (output projection); the
    dynamic quantizer rewrites a shared weight for one consumer and breaks the other
    (seen: "MatMulIntegerToFloat: Incompatible dimensions"). Stale value_info from the
    exporter misleads its shape inference too, so it is dropped.
    """
    del model.graph.value_info[:]
    initializers = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in model.graph.node:
        for slot, name in enumerate(node.input):
            if name in initializers:
                consumers[name].append((node, slot))
    for name, uses in consumers.items():
        for copy_index, (node, slot) in enumerate(uses[1:], start=1):
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[name])
            copy.name = f"{name}__use{copy_index}"
            model.graph.initializer.append(copy)
            node.input[slot] = copy.name


def _topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each comes after its inputs' producers.

    The float16 converter with keep_io_types appends its input casts at the end of the node
    list, which onnx.checker rejects ("Nodes in a graph must be topologically sorted").
    """
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        remaining = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                remaining.append(node)
        if len(remaining) == len(pending):
            names = ", ".join(n.name or n.op_type for n in remaining[:5])
            raise VariantError(f"graph has a cycle or an unknown input near: {names}")
        pending = remaining
    del graph.node[:]
    graph.node.extend(ordered)


def convert_graph(source: Path, target: Path, precision: Precision) -> None:
    """Write `source` (fp32 ONNX) as `target` in `precision`."""
    model = onnx.load(str(source))
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        converted = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
        _topological_sort(converted.graph)
        onnx.save(converted, str(target))
    elif precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        _untie_shared_initializers(model)
        with tempfile.TemporaryDirectory() as tmp:
            untied = Path(tmp) / source.name
            onnx.save(model, str(untied))
            quantize_dynamic(str(untied), str(target), weight_type=QuantType.QInt8)
    else:
        raise VariantError(f"{source}: no conversion to {precision!r}; use fp16 or int8")
    onnx.checker.check_model(str(target))


def convert_files(source_dir: Path, target_dir: Path, precision: Precision) -> None:
    """Both graphs converted and the tokenizer's files copied: a variant bundle less its
    manifest."""
    for graph in GRAPHS:
        convert_graph(source_dir / graph, target_dir / graph, precision)
    for name in read_manifest(source_dir).tokenizer.files:
        shutil.copy2(source_dir / name, target_dir / name)


def agreement(
    source_dir: Path,
    variant_dir: Path,
    sources: list[list[int]],
    *,
    steps: int = 8,
    threads: int = 2,
) -> bundle_eval.Agreement:
    """Compare both bundles on `sources` (token ids): log-probs of the first steps, fed the
    source bundle's own greedy tokens, and whole greedy outputs."""
    manifest = read_manifest(source_dir)
    special = manifest.special_tokens
    a, b = OrtSeq2Seq(source_dir, threads=threads), OrtSeq2Seq(variant_dir, threads=threads)

    def greedy(session: OrtSeq2Seq, batch: list[list[int]]) -> list[list[int]]:
        return session.greedy(
            batch,
            max_length=manifest.max_target_length,
            pad_id=special.pad_id,
            bos_id=special.bos_id,
            eos_id=special.eos_id,
        )

    worst, identical = 0.0, 0
    for start in range(0, len(sources), 32):
        batch = sources[start : start + 32]
        out_a, out_b = greedy(a, batch), greedy(b, batch)
        identical += sum(x == y for x, y in zip(out_a, out_b, strict=True))
        ids, lengths = pad_batch(batch, pad_id=special.pad_id)
        mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
        mem_a, *st_a = a.encode(ids, lengths)
        mem_b, *st_b = b.encode(ids, lengths)
        states_a, states_b = tuple(st_a), tuple(st_b)
        prev = np.full(len(batch), special.bos_id, dtype=np.int64)
        for t in range(steps):
            lp_a, _, states_a = a.step(prev, mem_a, mask, states_a)
            lp_b, _, states_b = b.step(prev, mem_b, mask, states_b)
            worst = max(worst, float(np.abs(lp_a - lp_b).max()))
            prev = np.array([o[t] if t < len(o) else special.eos_id for o in out_a], np.int64)
    return bundle_eval.Agreement(
        examples=len(sources),
        max_abs_diff_log_probs=worst,
        greedy_identical=identical / max(len(sources), 1),
    )


def make_variant(
    source_dir: Path,
    out_dir: Path,
    precision: Precision,
    *,
    data_dir: Path,
    version: int,
    agreement_examples: int = 256,
    threads: int = 2,
    overwrite: bool = False,
) -> BundleManifest:
    """Write `<out_dir>/<name>/<version>/` in `precision`; measure and record its size and
    quality change beside the source's figures in its bundle.json."""
    source = read_manifest(source_dir)
    if source.precision != "fp32":
        raise VariantError(f"{source_dir}: source must be fp32, not {source.precision}")
    if source.evaluation is None:
        raise VariantError(f"{source_dir}: has no evaluation to compare a variant with")
    final_dir = Path(out_dir) / source.name / str(version)
    if final_dir.resolve() == Path(source_dir).resolve():
        raise VariantError(f"{final_dir}: a variant cannot replace its own source")
    if final_dir.exists() and any(final_dir.iterdir()) and not overwrite:
        raise VariantError(f"{final_dir} already exists; pick another --version or --overwrite")
    # Every input is read before the minutes of conversion and scoring start.
    records = bundle_eval.scored_records(data_dir, source)
    work = final_dir.parent / f".building-{version}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        manifest = _build_variant(
            Path(source_dir),
            work,
            source,
            precision,
            records,
            version,
            agreement_examples=agreement_examples,
            threads=threads,
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # no half-built folder is left behind
        raise
    if final_dir.exists():
        shutil.rmtree(final_dir)
    work.rename(final_dir)
    return manifest


def _build_variant(
    source_dir: Path,
    work: Path,
    source: BundleManifest,
    precision: Precision,
    records: list[dict],
    version: int,
    *,
    agreement_examples: int,
    threads: int,
) -> BundleManifest:
    """Convert, measure agreement and score into `work`; write its manifest last."""
    convert_files(source_dir, work, precision)
    if source.imported_from is not None:  # cached states: checked through the offline engine
        from model_export.importers.variant import engine_agreement, engine_scores

        agree = engine_agreement(source_dir, work, records[:agreement_examples], threads)
        scores = engine_scores(work, source, records, threads)
    else:
        spec = bundle_eval.DecodeSpec.of(source)
        tok = load_tokenizer(source_dir / TOKENIZER_FILE)
        sources = encode_batch(
            tok,
            [ev.source_text(source.task, r) for r in records[:agreement_examples]],
            max_length=source.max_source_length,
        )
        agree = agreement(source_dir, work, sources, threads=threads)
        predictions = bundle_eval.greedy_predictions(work, spec, records, threads=threads)
        scores = bundle_eval.score_predictions(source.task, records, predictions)
    before = source.evaluation.metrics
    change = {k: round(v - before[k], 2) for k, v in scores.metrics.items() if k in before}
    evaluation = source.evaluation.model_copy(
        update={"metrics": scores.metrics, "by_source_length": scores.by_source_length}
    )
    fields = source.model_dump(exclude={"files"}) | {
        "version": version,
        "precision": precision,
        "evaluation": evaluation.model_dump(),
        "training": source.training
        | {
            "variant": {
                "source": f"{source.name}/{source.version}",
                "precision": precision,
                "size_bytes": files_bytes(work),
                "source_size_bytes": files_bytes(source_dir),
                "metric_change": change,
                "agreement": agreement_as_dict(agree),
            }
        },
    }
    return write_manifest(work, fields)


def agreement_as_dict(agree: bundle_eval.Agreement) -> dict[str, float]:
    return {
        "examples": agree.examples,
        "max_abs_diff_log_probs": round(agree.max_abs_diff_log_probs, 6),
        "greedy_identical": round(agree.greedy_identical, 4),
    }
