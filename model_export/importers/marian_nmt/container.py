"""Marian NMT's model files, read (and written, for test models) without Marian itself.

Two containers hold the same items (a name, a shape, a type and the bytes):
- `.bin` (src/common/binary.cpp): u64 version (1), u64 item count, one header per item
  (u64 name length incl. NUL, u64 type, u64 shape length, u64 data length), the names
  (NUL-terminated), the shapes (int32 each), a u64 offset and that many padding bytes (to a
  256-byte boundary), then every item's data, each padded to a multiple of 256 bytes.
- `.npz` (numpy): float items by name; `special:model.yml` as a byte array.
Either may be gzip-compressed (`.gz`, as Firefox ships them).

Types (src/common/types.h): two encodings exist. Bergamot's fork (browsermt/marian-dev,
the one translateLocally and Firefox students were written with) numbers intgemm8 0x4101
and intgemm16 0x4102; upstream marian-dev numbers them 0x10001 / 0x10002 and adds
CPU-specific packed variants. An intgemm item is the quantized matrix TRANSPOSED (the shape
is not updated: item (k, n) holds n x k values), then a float32 quantization multiplier m
(w = q / m, m = 127 / max|w| for 8 bits, 1024 for 16). Bergamot's fork keeps matrices whose
name contains "Wemb" untransposed (its marian-conv skips the transpose for them).
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_export.importers.checkpoint import ImportCheckpointError

BINARY_FILE_VERSION = 1
MODEL_YML = "special:model.yml"
_ALIGN = 256

# type code -> (name, numpy dtype of the stored values, kind); kind: "float", "int", "intgemm"
_READABLE: dict[int, tuple[str, str, str]] = {
    0x0101: ("int8", "i1", "int"),
    0x0102: ("int16", "<i2", "int"),
    0x0104: ("int32", "<i4", "int"),
    0x0108: ("int64", "<i8", "int"),
    0x0201: ("uint8", "u1", "int"),
    0x0202: ("uint16", "<u2", "int"),
    0x0204: ("uint32", "<u4", "int"),
    0x0208: ("uint64", "<u8", "int"),
    0x0402: ("float16", "<f2", "float"),
    0x0404: ("float32", "<f4", "float"),
    0x0408: ("float64", "<f8", "float"),
    0x4101: ("intgemm8", "i1", "intgemm"),  # Bergamot's fork
    0x4102: ("intgemm16", "<i2", "intgemm"),
    0x10001: ("intgemm8", "i1", "intgemm"),  # upstream marian-dev
    0x10002: ("intgemm16", "<i2", "intgemm"),
}
# Layouts tied to one CPU's instruction set (intgemm's tiling, FBGEMM's packing): refused.
_REFUSED: dict[int, str] = {
    0x0802: "packed16 (FBGEMM)",
    0x1801: "packed8avx2 (FBGEMM)",
    0x2801: "packed8avx512 (FBGEMM)",
    0x18001: "intgemm8ssse3",
    0x11001: "intgemm8avx2",
    0x12001: "intgemm8avx512",
    0x13001: "intgemm8avx512vnni",
    0x14002: "intgemm16sse2",
    0x11002: "intgemm16avx2",
    0x12002: "intgemm16avx512",
}
BERGAMOT_TYPES = frozenset({0x4101, 0x4102})
INTGEMM8 = {"bergamot": 0x4101, "upstream": 0x10001}
FLOAT32 = 0x0404


@dataclass(frozen=True)
class Item:
    name: str
    type_code: int
    shape: tuple[int, ...]
    data: bytes  # as stored, padding included

    @property
    def type_name(self) -> str:
        return _READABLE[self.type_code][0]

    @property
    def kind(self) -> str:
        return _READABLE[self.type_code][2]

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def values(self) -> np.ndarray:
        """The stored values in the item's shape (intgemm: the quantized integers, already
        transposed back to the item's shape)."""
        dtype = np.dtype(_READABLE[self.type_code][1])
        flat = np.frombuffer(self.data, dtype=dtype, count=self.elements)
        if self.kind != "intgemm" or len(self.shape) != 2 or not self.transposed:
            return flat.reshape(self.shape)
        rows, cols = self.shape
        return flat.reshape(cols, rows).T

    @property
    def transposed(self) -> bool:
        """An intgemm matrix stored as its transpose (all but Bergamot's embeddings)."""
        return self.kind == "intgemm" and not (
            self.type_code in BERGAMOT_TYPES and "Wemb" in self.name
        )

    def quant_mult(self) -> float:
        """An intgemm item's quantization multiplier m (w = q / m)."""
        offset = self.elements * np.dtype(_READABLE[self.type_code][1]).itemsize
        return float(struct.unpack_from("<f", self.data, offset)[0])

    def text(self) -> str:
        return self.data[: self.elements].split(b"\0", 1)[0].decode("utf-8")


def _gunzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ImportCheckpointError(f"{path}: not a readable gzip file: {exc}") from exc
    return raw


class _Reader:
    """Reads little-endian values from a byte string, refusing to run past its end."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.at = path, data, 0

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise ImportCheckpointError(
                f"{self.path}: truncated: {what} needs {size} bytes at offset {self.at}, "
                f"the file has {len(self.data)}"
            )
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def u64(self, what: str) -> int:
        return int(struct.unpack("<Q", self.take(8, what))[0])


def _check_type(path: Path, name: str, code: int) -> None:
    if code in _REFUSED:
        raise ImportCheckpointError(
            f"{path}: item {name!r} has type {_REFUSED[code]}, a layout for one CPU's "
            "instruction set; convert the model to intgemm8, intgemm16 or float32 with "
            "marian-conv"
        )
    if code not in _READABLE:
        raise ImportCheckpointError(f"{path}: item {name!r} has unknown type 0x{code:x}")


def read_bin(path: Path) -> list[Item]:
    """The items of a Marian `.bin` file; ImportCheckpointError names what is wrong."""
    reader = _Reader(path, _gunzip(path))
    version = reader.u64("the version")
    if version != BINARY_FILE_VERSION:
        detail = " (encrypted)" if version == 2 else ""
        raise ImportCheckpointError(
            f"{path}: binary file version {version}{detail}; only version 1 can be read"
        )
    count = reader.u64("the item count")
    if not 0 < count < 100_000:
        raise ImportCheckpointError(f"{path}: claims {count} items; not a Marian model")
    headers = [struct.unpack("<4Q", reader.take(32, "an item header")) for _ in range(count)]
    names = []
    for name_length, *_ in headers:
        raw = reader.take(name_length, "an item name")
        names.append(raw.rstrip(b"\0").decode("utf-8", errors="replace"))
    shapes = [
        tuple(int(d) for d in struct.unpack(f"<{n}i", reader.take(4 * n, "a shape")))
        for _, _, n, _ in headers
    ]
    reader.take(reader.u64("the padding length"), "padding")
    items = []
    for name, shape, (_, code, _, length) in zip(names, shapes, headers, strict=True):
        _check_type(path, name, code)
        item = Item(name, code, shape, reader.take(length, f"the data of {name!r}"))
        needed = item.elements * np.dtype(_READABLE[code][1]).itemsize
        needed += 4 if item.kind == "intgemm" else 0
        if any(d <= 0 for d in shape) or len(item.data) < needed:
            raise ImportCheckpointError(
                f"{path}: item {name!r} of shape {shape} holds {len(item.data)} bytes, "
                f"needs {needed}"
            )
        items.append(item)
    return items


def read_npz(path: Path) -> list[Item]:
    """The items of a Marian `.npz` file (float weights and the config)."""
    try:
        archive = np.load(io.BytesIO(_gunzip(path)), allow_pickle=False)
        arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ImportCheckpointError(f"{path}: not a readable .npz file: {exc}") from exc
    items = []
    for name, array in arrays.items():
        code = next(
            (c for c, (_, dtype, _) in _READABLE.items() if np.dtype(dtype) == array.dtype), None
        )
        if code is None:
            raise ImportCheckpointError(f"{path}: item {name!r} has dtype {array.dtype}")
        shape = tuple(int(d) for d in array.shape) or (1,)
        items.append(Item(name, code, shape, np.ascontiguousarray(array).tobytes()))
    return items


def read_items(path: Path) -> dict[str, Item]:
    """The items of a `.bin` or `.npz` model file (optionally `.gz`), by name."""
    stem = path.name.removesuffix(".gz")
    items = read_npz(path) if stem.endswith(".npz") else read_bin(path)
    by_name = {item.name: item for item in items}
    if MODEL_YML not in by_name:
        raise ImportCheckpointError(
            f"{path}: has no {MODEL_YML} item (the model's own config); not a Marian model "
            "saved by Marian 1.7 or later"
        )
    return by_name


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _ALIGN)


def quantized_item(name: str, weight: np.ndarray, *, code: int, bits: int = 8) -> Item:
    """`weight` (k, n) as Marian's marian-conv stores an intgemm matrix: quantized with
    m = 127 / max|w| (8 bits) or 1024 (16), transposed unless Bergamot keeps it as it is."""
    weight = np.asarray(weight, np.float32)
    if bits == 8:
        mult = np.float32(127.0) / np.float32(np.abs(weight).max())
        q = np.clip(np.rint(weight * mult), -127, 127).astype(np.int8)
    else:
        mult = np.float32(1024.0)
        q = np.clip(np.rint(weight * mult), -32767, 32767).astype("<i2")
    stored = q if (code in BERGAMOT_TYPES and "Wemb" in name) or q.ndim != 2 else q.T
    data = np.ascontiguousarray(stored).tobytes() + struct.pack("<f", float(mult))
    return Item(name, code, tuple(int(d) for d in weight.shape), data)


def float_item(name: str, array: np.ndarray) -> Item:
    array = np.asarray(array, np.float32)
    return Item(name, FLOAT32, tuple(int(d) for d in array.shape), array.tobytes())


def text_item(name: str, text: str) -> Item:
    raw = text.encode("utf-8") + b"\0"
    return Item(name, 0x0101, (len(raw),), raw)


def write_bin(path: Path, items: list[Item]) -> None:
    """Write `items` as Marian's `.bin` container (what binary.cpp's saveItems writes)."""
    header = struct.pack("<Q", len(items))
    header += b"".join(
        struct.pack(
            "<4Q", len(i.name.encode()) + 1, i.type_code, len(i.shape), len(_padded(i.data))
        )
        for i in items
    )
    header += b"".join(i.name.encode() + b"\0" for i in items)
    header += b"".join(struct.pack(f"<{len(i.shape)}i", *i.shape) for i in items)
    position = 8 + len(header)
    offset = ((position + 8) // _ALIGN + 1) * _ALIGN - position - 8
    body = b"".join(_padded(i.data) for i in items)
    path.write_bytes(
        struct.pack("<Q", BINARY_FILE_VERSION) + header + struct.pack("<Q", offset)
        + b"\0" * offset + body
    )  # fmt: skip


def write_npz(path: Path, arrays: dict[str, np.ndarray], config_yaml: str) -> None:
    """Write float weights and the config as Marian's `.npz` (the config as its bytes)."""
    raw = np.frombuffer(config_yaml.encode("utf-8") + b"\0", dtype=np.int8)
    np.savez(path, **{MODEL_YML: raw}, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
