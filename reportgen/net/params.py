"""MXNet's parameter files (NAME-NNNN.params) read without MXNet: every header checked against
the file's size before an array is taken from it.

A .params file is MXNet's NDArray list: the magic 0x112, a reserved word, the arrays (each a
magic number, its storage type, shape, device, type and data) and their names. MXNet's own
reader trusts the counts and shapes it reads (a count of 2**60 arrays is allocated, a type it
does not know is a fatal error), so a file from elsewhere is read here, in Python, where a
wrong count or shape is one line naming the file. The layouts are those of
src/ndarray/ndarray.cc: version 2 (MXNet >= 1.0, with the storage type), version 1 and the
legacy layout before it (shapes of 32-bit dimensions). Version 3 (numpy shape semantics) is
refused, as MXNet itself refuses it outside that mode.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from reportgen.errors import ModelError, ReportgenError
from reportgen.run.files import read_bounded

LIST_MAGIC = 0x112
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
# The largest parameters file read: the LeNet's are 1.7 MB in float32, 3.4 MB in float64.
MAX_BYTES = 64 << 20
MAX_ARRAYS = 4096
MAX_DIMS = 32
# mshadow's type flags: the dtype each is stored as.
TYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
    8: np.dtype("<i2"),
    9: np.dtype("<u2"),
    10: np.dtype("<u4"),
    11: np.dtype("<u8"),
    12: np.dtype("<u2"),  # bfloat16, which numpy lacks: refused where a parameter is read
}
BFLOAT16 = 12


class _Reader:
    """The file's bytes, read front to back; every read checked against what is left."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.at = payload, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.payload):
            raise ValueError(f"ends at byte {len(self.payload):,}, before the {size:,} bytes due at {self.at:,}")
        chunk = self.payload[self.at : self.at + size]
        self.at += size
        return chunk

    def number(self, form: str) -> int:
        (value,) = struct.unpack("<" + form, self.take(struct.calcsize(form)))
        return int(value)


def _shape(reader: _Reader, magic: int) -> tuple[int, ...] | None:
    """The array's shape; None for MXNet's empty ("none") array, which has no data."""
    if magic in (V1, V2):
        ndim = reader.number("i")
        if not 0 <= ndim <= MAX_DIMS:
            raise ValueError(f"an array of {ndim} dimensions")
        dims = tuple(reader.number("q") for _ in range(ndim))
    else:  # the legacy layout: the magic number is the number of dimensions
        if not 1 <= magic <= MAX_DIMS:
            raise ValueError(f"unknown array magic number 0x{magic:08x}")
        dims = tuple(reader.number("I") for _ in range(magic))
    if any(d < 0 for d in dims):
        raise ValueError(f"shape {dims}")
    return dims or None


def _array(reader: _Reader, index: int) -> tuple[np.ndarray | None, int]:
    """One stored array (None for an empty one) and its type flag."""
    magic = reader.number("I")
    if magic == V3:
        raise ValueError(f"array {index} was saved with numpy shape semantics (npx.set_np); save it without")
    if magic == V2:
        storage = reader.number("i")
        if storage != 0:
            raise ValueError(f"array {index} is sparse (storage type {storage}); a LeNet's parameters are dense")
    shape = _shape(reader, magic)
    if shape is None:
        return None, -1
    reader.take(8)  # the device it was saved from: it is loaded where reportgen runs
    flag = reader.number("i")
    if flag not in TYPES:
        raise ValueError(f"array {index} has unknown type flag {flag}")
    dtype = TYPES[flag]
    data = reader.take(math.prod(shape) * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype).reshape(shape), flag


def read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Every named array of a .params file, and each one's type flag (TYPES); a file that is
    not an NDArray list, or whose arrays are unnamed, is a ModelError naming it."""
    try:
        payload = read_bounded(path, MAX_BYTES, "parameters file")
    except ReportgenError as e:
        raise ModelError(e.format_message()) from e
    reader = _Reader(payload)
    try:
        if reader.number("Q") != LIST_MAGIC:
            raise ValueError("not an MXNet NDArray file (wrong magic number)")
        reader.take(8)  # reserved
        count = reader.number("Q")
        if count > MAX_ARRAYS:
            raise ValueError(f"{count:,} arrays")
        arrays = [_array(reader, i) for i in range(count)]
        names_count = reader.number("Q")
        if names_count not in (0, count):
            raise ValueError(f"{names_count:,} names for {count:,} arrays")
        names = [reader.take(reader.number("Q")).decode("utf-8") for _ in range(names_count)]
        if reader.at != len(payload):
            raise ValueError(f"{len(payload) - reader.at:,} bytes after the last name")
    except (ValueError, struct.error) as e:  # UnicodeDecodeError is a ValueError
        raise ModelError(f"{path}: cannot load the parameters ({e})") from e
    if not names:
        raise ModelError(f"{path}: unnamed arrays, not a model's parameters")
    if len(set(names)) != len(names):
        raise ModelError(f"{path}: two arrays of one name")
    stored = {name: array for name, (array, _) in zip(names, arrays) if array is not None}
    return stored, {name: flag for name, (_, flag) in zip(names, arrays)}
