"""The IDX reader and the Dataset, against the IDX spec and MNIST's published facts."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from reportgen import data, notebook
from reportgen.errors import DataError

# MNIST's published class counts; the test counts are also the column sums of the seed's table.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file written straight from the format's description (unsigned bytes)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_embedded_mnist_is_the_published_one():
    ds = data.load()
    assert ds.train_x.shape == (60000, 28, 28) and ds.test_x.shape == (10000, 28, 28)
    assert ds.train_x.dtype == np.uint8
    assert ds.checksums == notebook.MNIST_SHA256
    assert ds.is_published_mnist
    assert tuple(ds.train_y[:5]) == notebook.FIRST_TRAIN_LABELS
    assert np.bincount(ds.train_y, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(ds.test_y, minlength=10).tolist() == np.sum(notebook.CONFUSION_TABLE, axis=0).tolist()


def test_limits_take_the_first_images(small):
    full = data.load()
    assert len(small.train_x) == 3000 and len(small.test_y) == 1000
    assert np.array_equal(small.train_x, full.train_x[:3000])
    assert np.array_equal(small.test_y, full.test_y[:1000])
    assert small.train_total == 60000 and small.describe().train_images == 3000


def test_read_idx_matches_a_hand_written_file(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    raw = tmp_path / "x-idx3-ubyte"
    raw.write_bytes(idx_bytes(array))
    packed = tmp_path / "x-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(idx_bytes(array)))
    for path in (raw, packed):
        got, _ = data.read_idx(path)
        assert np.array_equal(got, array)


def test_the_seeds_file_names_and_raw_files_are_accepted(mnist_copy):
    for name, seed_name in data.FILES.values():
        (mnist_copy / name).rename(mnist_copy / seed_name)
    ds = data.load(mnist_copy, train_limit=10, test_limit=10)
    assert tuple(ds.train_y[:5]) == notebook.FIRST_TRAIN_LABELS
    assert ds.is_published_mnist is False  # raw files: other bytes than the .gz published


def test_to_input_scales_to_unit_range(small):
    x = data.to_input(small.test_x[:7])
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert x[3, 0, 10, 12] == pytest.approx(small.test_x[3, 10, 12] / 255.0)


def test_raw_pixels_stay_0_to_255_as_the_seed_fed_them(small):
    x = data.to_input(small.test_x[:7], "raw")
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 255.0
    assert np.array_equal(x[:, 0], small.test_x[:7])
    with pytest.raises(DataError, match="--pixels half: choose unit or raw"):
        data.to_input(small.test_x[:1], "half")


def test_batches_have_one_shape_and_a_blank_padded_tail(small):
    images = small.test_x[:7]
    got = list(data.batches(images, 3, "raw"))
    assert [(start, count) for start, count, _ in got] == [(0, 3), (3, 3), (6, 1)]
    assert all(batch.shape == (3, 1, 28, 28) and batch.dtype == np.float32 for _, _, batch in got)
    assert np.array_equal(got[2][2][0, 0], images[6]) and not got[2][2][1:].any()


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda d: (d / "train-images-idx3-ubyte").write_bytes(
                (d / "train-images-idx3-ubyte").read_bytes()[: 16 + 784 * 1276 + 100]
            ),
            "train-images-idx3-ubyte: truncated: header says 60000 images, file holds 1276",
        ),
        (
            lambda d: (d / "t10k-labels-idx1-ubyte").write_bytes(
                b"\x00\x01" + (d / "t10k-labels-idx1-ubyte").read_bytes()[2:]
            ),
            "t10k-labels-idx1-ubyte: not an IDX file (wrong magic number)",
        ),
        (lambda d: (d / "t10k-labels-idx1-ubyte").unlink(), "no test labels file"),
        (
            lambda d: (d / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9999))),
            "t10k-images-idx3-ubyte holds 10000 images but t10k-labels-idx1-ubyte holds 9999 labels",
        ),
        (
            lambda d: (d / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.r_[np.zeros(42), 11, np.zeros(9957)])),
            "t10k-labels-idx1-ubyte: label 11 at index 42 is outside 0-9",
        ),
        (
            lambda d: (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros((60000, 2)))),
            "expected a vector of unsigned-byte labels",
        ),
        (
            lambda d: (d / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((10000, 20, 20)))),
            "expected 28x28 unsigned-byte images",
        ),
    ],
)
def test_bad_files_give_one_line_naming_the_file(mnist_copy, damage, message):
    damage(mnist_copy)
    with pytest.raises(DataError) as caught:
        data.load(mnist_copy)
    text = caught.value.format_message()
    assert message in text
    assert "\n" not in text


def test_a_broken_gzip_is_a_data_error(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    whole = gzip.compress(idx_bytes(np.arange(5000) % 256))
    bad.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="not a readable gzip file"):
        data.read_idx(bad)


def test_missing_folder_and_bad_limits(tmp_path):
    with pytest.raises(DataError, match="no such data folder"):
        data.load(tmp_path / "nowhere")
    with pytest.raises(DataError, match="--train-limit must be at least 1"):
        data.load(train_limit=0)


def test_changed_data_is_not_published_mnist(mnist_copy):
    labels = mnist_copy / "t10k-labels-idx1-ubyte"
    gzip_path = Path(str(labels) + ".gz")
    gzip_path.write_bytes(gzip.compress(labels.read_bytes()))
    labels.unlink()
    ds = data.load(mnist_copy, train_limit=5, test_limit=5)
    assert not ds.is_published_mnist
    assert ds.describe().published_mnist is False


def test_without_the_embedded_data_the_error_says_what_to_give(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="the embedded MNIST is not here; give --data-dir"):
        data.load()
