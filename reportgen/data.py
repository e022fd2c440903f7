"""Read MNIST from IDX files, check them, and hand on a Dataset."""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from reportgen import notebook
from reportgen.errors import DataError

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
EMBEDDED = "data/mnist (embedded)"  # how a report names the default data, wherever it was built

# Each role with the names it may go by: the published names, and the seed's.
FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def training_files(checksums: dict[str, str]) -> dict[str, str]:
    """The training images' and labels' files of a checksum table (file name -> SHA-256)."""
    names = FILES["train_images"] + FILES["train_labels"]
    return {name: digest for name, digest in checksums.items() if name.removesuffix(".gz") in names}


# How images enter a network: "unit" divides the 0-255 pixels by 255 (how reportgen trains),
# "raw" feeds them as they are (how the seed trained). A model must be fed as it was trained.
PIXELS = ("unit", "raw")
PIXEL_SCALINGS = {"unit": "divided by 255, to [0, 1]", "raw": "raw, 0-255"}

_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class DataRecord:
    """The data part of the run record: which files and how many images (how they were scaled
    belongs to the model: ModelRecord.pixels)."""

    dir: str | None  # --data-dir as the user typed it; None for the embedded MNIST
    files: dict[str, str]  # file name -> SHA-256
    published_mnist: bool
    train_images: int
    test_images: int
    train_total: int  # images in the training file, before any limit
    test_total: int

    @property
    def shown(self) -> str:
        """The folder as a report names it: never the building machine's absolute path."""
        return EMBEDDED if self.dir is None else self.dir

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DataRecord:
        return cls(**{f.name: body[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Dataset:
    train_x: np.ndarray  # (n, 28, 28) uint8, 0 is background
    train_y: np.ndarray  # (n,) uint8
    test_x: np.ndarray
    test_y: np.ndarray
    checksums: dict[str, str]  # file name -> SHA-256 of the file as read
    data_dir: str | None  # as given to load(); None for the embedded MNIST
    train_total: int  # images in the training file, before any limit
    test_total: int

    @property
    def is_published_mnist(self) -> bool:
        """Whether the files read are byte for byte the published MNIST."""
        return sorted(self.checksums.values()) == sorted(notebook.MNIST_SHA256.values())

    def describe(self) -> DataRecord:
        return DataRecord(
            dir=self.data_dir,
            files=dict(self.checksums),
            published_mnist=self.is_published_mnist,
            train_images=len(self.train_x),
            test_images=len(self.test_x),
            train_total=self.train_total,
            test_total=self.test_total,
        )


def find_file(data_dir: Path, role: str) -> Path:
    for name in FILES[role]:
        for candidate in (data_dir / f"{name}.gz", data_dir / name):
            if candidate.is_file():
                return candidate
    raise DataError(f"{data_dir}: no {role.replace('_', ' ')} file (looked for {FILES[role][0]}[.gz])")


# The largest IDX file read: MNIST holds 70,000 images, the largest MNIST-shaped sets (EMNIST,
# infinite MNIST's 8.1 million) fewer than 10 million. The bound is checked from the header,
# before anything is decompressed or allocated.
MAX_ITEMS = 10_000_000
MAX_BYTES = MAX_ITEMS * 28 * 28
_CHUNK = 1 << 20
# What LeNet takes: each kind's shape after the first axis, unsigned bytes, and how to say it.
EXPECTED = {
    "images": ((28, 28), "28x28 unsigned-byte images"),
    "labels": ((), "a vector of unsigned-byte labels"),
}


class _Gunzip:
    """A gzip file decompressed only as far as it is read: never more than the bytes asked for
    (zlib's max_length), and each member's header parsed by zlib in C, so that a name field of
    a gigabyte costs no loop in Python. A file may hold several members, as gzip allows, and
    zero bytes between them."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        self.file = file
        self.inflate = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer, checked
        self.fresh = True  # no byte of the current member fed yet

    def _input(self) -> bytes:
        """Compressed bytes to feed next; b"" at a clean end of the file."""
        rest = b""
        if self.inflate.eof:  # a member ended (its unused_data holds all that followed): another may follow
            rest = self.inflate.unused_data
            self.inflate, self.fresh = zlib.decompressobj(wbits=31), True
        elif self.inflate.unconsumed_tail:  # input held back by max_length
            return self.inflate.unconsumed_tail
        while True:
            chunk = rest or self.file.read(_CHUNK)
            rest = b""
            if not chunk:
                if not self.fresh:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")
                return b""
            if not self.fresh:
                return chunk
            chunk = chunk.lstrip(b"\0")  # gzip's padding between members
            if chunk:
                return chunk

    def read(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            compressed = self._input()
            if not compressed:
                break
            self.fresh = False
            out += self.inflate.decompress(compressed, size - len(out))
        return bytes(out)


def _header(stream: io.BufferedIOBase | _Gunzip, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """The element type and dimensions an IDX header declares."""
    start = stream.read(4)
    if len(start) < 4 or start[0] != 0 or start[1] != 0:
        raise DataError(f"{path}: not an IDX file (wrong magic number)")
    type_code, ndim = start[2], start[3]
    if type_code not in _DTYPES:
        raise DataError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    sizes = stream.read(4 * ndim)
    if ndim == 0 or len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    return np.dtype(_DTYPES[type_code]), struct.unpack(f">{ndim}I", sizes)


def _check(path: Path, kind: str, dtype: np.dtype, dims: tuple[int, ...]) -> int:
    """The body's size in bytes the header promises, refused if it is not what `kind` must be."""
    if kind in EXPECTED:
        shape, text = EXPECTED[kind]
        if dims[1:] != shape or dtype != np.uint8:
            found = dims[1:] if kind == "images" else dims
            raise DataError(f"{path}: expected {text}, found {dtype} {found}")
    if dims[0] == 0:
        raise DataError(f"{path}: holds no {kind}")
    if dims[0] > MAX_ITEMS:
        raise DataError(f"{path}: header says {dims[0]:,} {kind}; reportgen reads at most {MAX_ITEMS:,}")
    size = dtype.itemsize * math.prod(dims)  # a Python int: no overflow
    if size > MAX_BYTES:
        raise DataError(f"{path}: header says {'x'.join(map(str, dims))} {dtype}, more than reportgen reads")
    return size


def _body(stream: io.BufferedIOBase | _Gunzip, size: int) -> bytearray:
    """Up to `size` bytes, read in chunks: memory grows with what is there, not with what a
    header claims."""
    body = bytearray()
    while len(body) < size:
        chunk = stream.read(min(_CHUNK, size - len(body)))
        if not chunk:
            break
        body += chunk
    return body


def read_idx(path: Path, kind: str = "items") -> tuple[np.ndarray, str]:
    """Read one IDX file, raw or gzip; return the array and the file's SHA-256.

    The header is read first (through a streaming decompressor for .gz) and checked: its
    type, its dimensions (for "images" and "labels", what LeNet takes) and the size they
    promise; then exactly that many bytes are read, and anything after them is refused. A
    gzip bomb is refused after decompressing its header and body, never the whole of it.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            stream: io.BufferedIOBase | _Gunzip = _Gunzip(file) if path.suffix == ".gz" else file
            dtype, dims = _header(stream, path)
            size = _check(path, kind, dtype, dims)
            if stream is file:  # a raw file: its size says at once whether the body is all there
                body_size = os.fstat(file.fileno()).st_size - file.tell()
                if body_size > size:
                    raise DataError(f"{path}: {body_size - size} bytes after the last of {dims[0]} {kind}")
            body = _body(stream, size)
            if len(body) < size:
                held = len(body) // (size // dims[0]) if size else 0
                raise DataError(f"{path}: truncated: header says {dims[0]} {kind}, file holds {held}")
            if stream.read(1):
                raise DataError(f"{path}: data after the last of {dims[0]} {kind}")
            file.seek(0)
            digest = hashlib.file_digest(file, "sha256").hexdigest()
    except FileNotFoundError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from e
    except (OSError, EOFError, zlib.error) as e:
        if path.suffix == ".gz":
            raise DataError(f"{path}: not a readable gzip file ({e})") from e
        raise DataError(f"{path}: cannot read: {e}") from e
    return np.frombuffer(body, dtype=dtype).reshape(dims), digest


def _read_pair(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    images_path = find_file(data_dir, f"{split}_images")
    labels_path = find_file(data_dir, f"{split}_labels")
    images, images_sha = read_idx(images_path, "images")
    labels, labels_sha = read_idx(labels_path, "labels")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds {len(labels)} labels"
        )
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is outside 0-9")
    return images, labels, {images_path.name: images_sha, labels_path.name: labels_sha}


def load(data_dir: Path | str | None = None, train_limit: int | None = None, test_limit: int | None = None) -> Dataset:
    """Read and check the four MNIST files; keep the first N images of each split if asked."""
    if data_dir is None and not DEFAULT_DATA_DIR.is_dir():
        # An installed wheel has no data/: the embedded MNIST lives in the checkout.
        raise DataError(f"{DEFAULT_DATA_DIR}: the embedded MNIST is not here; give --data-dir")
    given = None if data_dir is None else str(data_dir)
    folder = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such data folder")
    for name, limit in (("--train-limit", train_limit), ("--test-limit", test_limit)):
        if limit is not None and limit < 1:
            raise DataError(f"{name} must be at least 1, not {limit}")
    train_x, train_y, train_sums = _read_pair(folder, "train")
    test_x, test_y, test_sums = _read_pair(folder, "test")
    return Dataset(
        train_x=train_x[:train_limit],
        train_y=train_y[:train_limit],
        test_x=test_x[:test_limit],
        test_y=test_y[:test_limit],
        checksums={**train_sums, **test_sums},
        data_dir=given,
        train_total=len(train_x),
        test_total=len(test_x),
    )


def to_input(images: np.ndarray, pixels: str = "unit") -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 1, 28, 28), the network's input.

    "unit" divides by 255, to [0, 1]: it keeps tanh units out of saturation at the start of
    training. "raw" keeps 0-255, as the seed fed them: a model trained so must be fed so.
    """
    if pixels not in PIXELS:
        raise DataError(f"--pixels {pixels}: choose unit or raw")
    x = images.astype(np.float32)[:, None, :, :]
    return x / 255.0 if pixels == "unit" else x


def batches(images: np.ndarray, size: int, pixels: str = "unit") -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, count, batch) for uint8 images (n, 28, 28): the network's input in batches of one shape.

    Every batch is float32 (size, 1, 28, 28): a network hybridized with static_shape would
    rebuild its cached graph for a short last batch, so that one is padded with blank images
    (rows past `count`), whose outputs the caller drops.
    """
    for start in range(0, len(images), size):
        part = images[start : start + size]
        batch = np.zeros((size, 1, 28, 28), np.float32)
        batch[: len(part)] = to_input(part, pixels)
        yield start, len(part), batch
