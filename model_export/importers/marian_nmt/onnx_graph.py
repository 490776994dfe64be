"""A small ONNX graph writer, and the weight store several graphs of one bundle share.

The Marian graphs are written node by node (not traced from torch), so that what runs in
onnxruntime is exactly the arithmetic chosen here: Marian's int8 products with its own
quantization multipliers, and weights stored once for every graph of a bundle. Every
weight lives in ONE external data file (`weights.bin`) that each graph points into; small
constants stay inside the graph.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
WEIGHTS_FILE = "weights.bin"
_ALIGN = 64  # bytes; every tensor in weights.bin starts on such a boundary

ELEMENT = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.bool_): TensorProto.BOOL,
}


@dataclass
class WeightStore:
    """Named arrays shared by the graphs of one bundle, written once to `weights.bin`."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def put(self, name: str, array: np.ndarray) -> str:
        array = np.ascontiguousarray(array)
        known = self.arrays.get(name)
        if known is not None and (known.dtype != array.dtype or not np.array_equal(known, array)):
            raise ValueError(f"weight {name!r} stored twice with different values")
        self.arrays[name] = array
        return name

    def write(self, folder: Path) -> dict[str, tuple[int, int]]:
        """Write every array to folder/weights.bin; name -> (offset, length)."""
        places: dict[str, tuple[int, int]] = {}
        with (folder / WEIGHTS_FILE).open("wb") as out:
            position = 0
            for name, array in self.arrays.items():
                padding = -position % _ALIGN
                out.write(b"\0" * padding)
                position += padding
                raw = array.tobytes()
                out.write(raw)
                places[name] = (position, len(raw))
                position += len(raw)
        return places


class Graph:
    """One graph under construction: `op` appends a node and returns its output names."""

    def __init__(self, name: str, store: WeightStore) -> None:
        self.name = name
        self.store = store
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.constants: dict[str, onnx.TensorProto] = {}
        self.weights: set[str] = set()
        self.domains: set[str] = set()  # operator sets besides ONNX's own (com.microsoft)
        self._ids = itertools.count()

    def _fresh(self, hint: str) -> str:
        return f"{hint}_{next(self._ids)}"

    def input(self, name: str, element: int, shape: list[str | int]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, element, shape))
        return name

    def output(self, name: str, value: str, element: int, shape: list[str | int]) -> None:
        self.nodes.append(helper.make_node("Identity", [value], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, element, shape))

    def op(
        self, op_type: str, *inputs: str, outputs: int = 1, domain: str = "", **attrs: object
    ) -> str:
        """Append a node (of onnxruntime's `domain` when given); returns its first output."""
        names = [self._fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, domain=domain, **attrs))
        if domain:
            self.domains.add(domain)
        return names[0]

    def const(self, value: np.ndarray | float | int, hint: str = "c") -> str:
        """A small constant kept inside this graph."""
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        name = self._fresh(hint)
        self.constants[name] = numpy_helper.from_array(array, name)
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        """A weight kept once in the bundle's weights.bin."""
        self.weights.add(self.store.put(name, array))
        return name

    def model(self, places: dict[str, tuple[int, int]]) -> onnx.ModelProto:
        """The finished model, its weights pointing into weights.bin at `places`."""
        initializers = list(self.constants.values())
        for name in sorted(self.weights):
            array = self.store.arrays[name]
            tensor = onnx.TensorProto(name=name, data_type=ELEMENT[array.dtype])
            tensor.dims.extend(array.shape)
            tensor.data_location = TensorProto.EXTERNAL
            offset, length = places[name]
            for key, value in (("location", WEIGHTS_FILE), ("offset", offset), ("length", length)):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, str(value)
            initializers.append(tensor)
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, initializers)
        model = helper.make_model(
            graph,
            opset_imports=[
                helper.make_opsetid("", OPSET),
                *(helper.make_opsetid(domain, 1) for domain in sorted(self.domains)),
            ],
            producer_name="seq2seq-serve model_export (Marian NMT import)",
        )
        model.ir_version = 8
        return model


def save(graphs: dict[str, Graph], folder: Path) -> None:
    """Write weights.bin once and every graph beside it (file name -> graph); each is
    checked by onnx.checker with its external data in place."""
    store = next(iter(graphs.values())).store
    places = store.write(folder)
    for file_name, graph in graphs.items():
        path = folder / file_name
        onnx.save_model(graph.model(places), str(path))
        onnx.checker.check_model(str(path))
