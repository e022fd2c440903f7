"""Read MNIST from IDX files, check them, and hand on a Dataset."""

from __future__ import annotations

import gzip
import hashlib
import io
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


def read_idx(path: Path, kind: str = "items") -> tuple[np.ndarray, str]:
    """Read one IDX file, raw or gzip; return the array and the file's SHA-256."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from e
    digest = hashlib.sha256(raw).hexdigest()
    if path.suffix == ".gz":
        try:
            # GzipFile, unlike gzip.decompress, refuses a stream cut short.
            raw = gzip.GzipFile(fileobj=io.BytesIO(raw)).read()
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: not a readable gzip file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (wrong magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _DTYPES:
        raise DataError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[type_code])
    item_bytes = dtype.itemsize * int(np.prod(dims[1:], dtype=np.int64))
    body = len(raw) - header
    if body < dims[0] * item_bytes:
        held = body // item_bytes if item_bytes else 0
        raise DataError(f"{path}: truncated: header says {dims[0]} {kind}, file holds {held}")
    if body > dims[0] * item_bytes:
        raise DataError(f"{path}: {body - dims[0] * item_bytes} bytes after the last of {dims[0]} {kind}")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array, digest


def _read_pair(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    images_path = find_file(data_dir, f"{split}_images")
    labels_path = find_file(data_dir, f"{split}_labels")
    images, images_sha = read_idx(images_path, "images")
    labels, labels_sha = read_idx(labels_path, "labels")
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected 28x28 unsigned-byte images, found {images.dtype} {images.shape[1:]}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{labels_path}: expected a vector of unsigned-byte labels, found {labels.dtype} {labels.shape}"
        )
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
