"""ONNX export of the encoder and ONE decoder step, with the names fixed by service/bundle.py.

Exporter choice (pinned): the TorchScript exporter, `torch.onnx.export(..., dynamo=False)`.
`dynamo=True` once exported nn.GRU with linear_before_reset=0, a silent error of up to 14%
(pytorch issue 189225). Measured on torch 2.13.0 / onnxruntime 1.31.1 (CPU provider): both
exporters write GRU with linear_before_reset=1 and match eager PyTorch to ~5e-7 in
log-probs. The dynamo exporter, though, labels the encoder's `memory` output with the traced
source length (e.g. [batch, 7, H]) although the graph computes any length, so onnxruntime
warns on every run and a shape check would be misled; it also takes ~6 s instead of ~0.2 s.
Hence TorchScript is pinned; `exporter="dynamo"` stays selectable for re-checking, and every
export is checked by onnx.checker, by its names and dynamic axes here, and by parity.py.

Every graph keeps the contract's inputs even where a member does not read one (the
Transformer's step reads cached cross-attention keys, not `memory`): the TorchScript
exporter drops unread inputs, so they are put back as declared, unread graph inputs.

A step module returns every state; the decoder graph outputs only those that are not
`constant` (`StepGraph`): a constant state's output would be a copy of its input, made by
onnxruntime at every step.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Literal

import onnx
import torch
from torch import Tensor, nn

from model_export.base import EncoderDecoder
from service.bundle import (
    DEC_ATTENTION,
    DEC_LOG_PROBS,
    DEC_MEMORY,
    DEC_PREV_IDS,
    DEC_SRC_MASK,
    DECODER_FILE,
    ENC_MEMORY,
    ENC_SRC_IDS,
    ENC_SRC_LENGTHS,
    ENCODER_FILE,
    StateTensor,
    init_state_name,
    state_input_name,
    state_output_name,
)

Exporter = Literal["torchscript", "dynamo"]
PINNED_EXPORTER: Exporter = "torchscript"
OPSET = 17

ENCODER_INPUTS = [ENC_SRC_IDS, ENC_SRC_LENGTHS]
DECODER_INPUTS_FIXED = [DEC_PREV_IDS, DEC_MEMORY, DEC_SRC_MASK]  # then state_<name> each


def graph_names(
    states: tuple[str, ...], constant: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """Input and output names of both graphs for a decoder with these states (the
    `constant` ones have no output)."""
    updated = [s for s in states if s not in constant]
    return {
        "encoder_inputs": ENCODER_INPUTS,
        "encoder_outputs": [ENC_MEMORY, *(init_state_name(s) for s in states)],
        "decoder_inputs": [*DECODER_INPUTS_FIXED, *(state_input_name(s) for s in states)],
        "decoder_outputs": [DEC_LOG_PROBS, DEC_ATTENTION, *(state_output_name(s) for s in updated)],
    }


def spec_names(specs: tuple[StateTensor, ...]) -> dict[str, list[str]]:
    """`graph_names` for these manifest states."""
    return graph_names(tuple(s.name for s in specs), frozenset(s.name for s in specs if s.constant))


class StepGraph(nn.Module):
    """A decoder step module as its graph: the same inputs; log_probs, attention and only
    the states that are not constant out."""

    def __init__(self, step: nn.Module, specs: tuple[StateTensor, ...]) -> None:
        super().__init__()
        self.step = step
        self.updated = [i for i, s in enumerate(specs) if not s.constant]

    def forward(
        self, prev_ids: Tensor, memory: Tensor, src_mask: Tensor, *states: Tensor
    ) -> tuple[Tensor, ...]:
        log_probs, attention, *new_states = self.step(prev_ids, memory, src_mask, *states)
        return (log_probs, attention, *(new_states[i] for i in self.updated))


def step_output_axes(specs: tuple[StateTensor, ...]) -> dict[str, dict[int, str]]:
    """Dynamic axes of the decoder's outputs."""
    axes = {DEC_LOG_PROBS: {0: "batch"}, DEC_ATTENTION: {0: "batch", 1: "src_len"}}
    return axes | {
        state_output_name(s.name): state_axes(s, step_output=True) for s in specs if not s.constant
    }


class _EncoderGraph(nn.Module):
    def __init__(self, model: EncoderDecoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        return self.model.encode(src_ids, src_lengths)


def _example_inputs(model: EncoderDecoder) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """Inputs with distinct B=3, S=7 and unequal lengths, so no axis is traced as a constant
    (states with a target axis get their own past length, B + 2)."""
    hidden = model.config.hidden_size
    src_ids = torch.randint(6, model.config.vocab_size, (3, 7), dtype=torch.long)
    src_lengths = torch.tensor([7, 5, 2], dtype=torch.long)
    memory = torch.randn(3, 7, hidden)
    mask = torch.arange(7).unsqueeze(0) < src_lengths.unsqueeze(1)
    prev = torch.tensor([1, 9, 11], dtype=torch.long)
    states = model.example_states(3, 7)
    return (src_ids, src_lengths), (prev, memory, mask, *states)


def state_axes(state: StateTensor, *, step_output: bool = False) -> dict[int, str]:
    """A state's dynamic axes; a step's output target axis is one slot longer than its
    input's, so it gets its own name."""
    axes = {state.batch_axis: "batch"}
    if state.source_axis is not None:
        axes[state.source_axis] = "src_len"
    if state.target_axis is not None:
        axes[state.target_axis] = "past_len_next" if step_output else "past_len"
    return axes


def export_graph(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    exporter: Exporter,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings and the legacy-exporter notice
        if exporter == "torchscript":
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                dynamo=False,
            )
        else:
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=_dynamic_shapes(module, input_names, dynamic_axes),
                opset_version=max(OPSET, 18),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    model_proto = onnx.load(str(path))
    if _restore_unread_inputs(model_proto, args, input_names, dynamic_axes):
        onnx.save(model_proto, str(path))
    onnx.checker.check_model(model_proto, full_check=True)
    _check_names(model_proto, path, input_names, output_names)
    _check_dynamic_axes(model_proto, path, dynamic_axes)


def _dynamic_shapes(
    module: nn.Module, input_names: list[str], dynamic_axes: dict[str, dict[int, str]]
) -> tuple[object, ...]:
    """dynamic_axes as torch.export's dynamic_shapes, one entry per parameter of `forward`:
    a `*states` parameter takes the remaining inputs as one tuple (the dynamo exporter
    cannot convert dynamic_axes for such a signature)."""
    shapes = [
        {axis: torch.export.Dim.DYNAMIC for axis in dynamic_axes.get(n, {})} for n in input_names
    ]
    parameters = list(inspect.signature(module.forward).parameters.values())
    fixed = [p for p in parameters if p.kind is not p.VAR_POSITIONAL]
    if len(fixed) == len(parameters):
        return tuple(shapes)
    return (*shapes[: len(fixed)], tuple(shapes[len(fixed) :]))


def _restore_unread_inputs(
    proto: onnx.ModelProto,
    args: tuple[Tensor, ...],
    input_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> bool:
    """Put back the declared inputs the exporter dropped because no node reads them, in
    declared order, typed and shaped like their example (dynamic axes named). -> changed."""
    present = {i.name: i for i in proto.graph.input}
    if all(name in present for name in input_names):
        return False
    ordered = []
    for name, example in zip(input_names, args, strict=True):
        if name in present:
            ordered.append(present[name])
            continue
        axes = dynamic_axes.get(name, {})
        shape = [axes.get(axis, size) for axis, size in enumerate(example.shape)]
        element = onnx.helper.np_dtype_to_tensor_dtype(example.numpy().dtype)
        ordered.append(onnx.helper.make_tensor_value_info(name, element, shape))
    extra = [i for i in proto.graph.input if i.name not in input_names]  # initializers
    del proto.graph.input[:]
    proto.graph.input.extend([*ordered, *extra])
    return True


def _check_names(proto: onnx.ModelProto, path: Path, inputs: list[str], outputs: list[str]) -> None:
    got_in = [i.name for i in proto.graph.input]
    got_out = [o.name for o in proto.graph.output]
    if got_in != inputs or got_out != outputs:
        raise RuntimeError(
            f"{path}: graph names {got_in} -> {got_out}, expected {inputs} -> {outputs}"
        )


def _check_dynamic_axes(
    proto: onnx.ModelProto, path: Path, dynamic_axes: dict[str, dict[int, str]]
) -> None:
    values = {v.name: v for v in [*proto.graph.input, *proto.graph.output]}
    for name, axes in dynamic_axes.items():
        dims = values[name].type.tensor_type.shape.dim
        for axis in axes:
            if not dims[axis].dim_param:
                raise RuntimeError(
                    f"{path}: axis {axis} of {name!r} is fixed at {dims[axis].dim_value}, "
                    "expected a dynamic axis"
                )


class ExportError(ValueError):
    """The model asks for something the exported graphs cannot represent."""


def export_encoder_and_step(
    encoder: nn.Module,
    step: nn.Module,
    enc_args: tuple[Tensor, ...],
    dec_args: tuple[Tensor, ...],
    specs: tuple[StateTensor, ...],
    out_dir: Path,
    *,
    exporter: Exporter,
) -> None:
    """Write encoder.onnx and decoder.onnx of the contract from these two modules (eval
    mode), with every axis the state specs make dynamic named as the bundle expects."""
    names = spec_names(specs)
    batch_seq = {0: "batch", 1: "src_len"}
    enc_axes = {ENC_SRC_IDS: batch_seq, ENC_SRC_LENGTHS: {0: "batch"}, ENC_MEMORY: batch_seq}
    # an initial target axis is empty (length 0): the dynamo exporter writes it as a fixed 0
    enc_axes |= {
        init_state_name(s.name): state_axes(s.model_copy(update={"target_axis": None}))
        for s in specs
    }
    dec_axes = {DEC_PREV_IDS: {0: "batch"}, DEC_MEMORY: batch_seq, DEC_SRC_MASK: batch_seq}
    dec_axes |= {state_input_name(s.name): state_axes(s) for s in specs}
    dec_axes |= step_output_axes(specs)
    with torch.no_grad():
        export_graph(
            encoder,
            enc_args,
            out_dir / ENCODER_FILE,
            input_names=names["encoder_inputs"],
            output_names=names["encoder_outputs"],
            dynamic_axes=enc_axes,
            exporter=exporter,
        )
        export_graph(
            step,
            dec_args,
            out_dir / DECODER_FILE,
            input_names=names["decoder_inputs"],
            output_names=names["decoder_outputs"],
            dynamic_axes=dec_axes,
            exporter=exporter,
        )


def export_onnx(
    model: EncoderDecoder, out_dir: Path, *, exporter: Exporter = PINNED_EXPORTER
) -> None:
    """Write encoder.onnx and decoder.onnx (eval mode, fp32) into `out_dir`."""
    problems = model.export_problems()
    if problems:
        raise ExportError(
            f"cannot export this {model.config.architecture} model: " + "; ".join(problems)
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    enc_args, dec_args = _example_inputs(model)
    export_encoder_and_step(
        _EncoderGraph(model).eval(),  # a fresh wrapper is in training mode
        StepGraph(model.decoder, model.state_specs()).eval(),
        enc_args,
        dec_args,
        model.state_specs(),
        out_dir,
        exporter=exporter,
    )
    model.train(was_training)
