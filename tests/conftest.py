"""Shared fixtures: the embedded MNIST, small slices of it, a CLI runner, a small trained run."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

# As the CLI does, before mxnet is first imported.
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import pytest
from click.testing import CliRunner

from reportgen import data

MNIST = data.DEFAULT_DATA_DIR


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def small() -> data.Dataset:
    """3,000 training and 1,000 test images of the real MNIST."""
    return data.load(train_limit=3000, test_limit=1000)


@pytest.fixture
def mnist_copy(tmp_path: Path) -> Path:
    """A writable copy of the four MNIST files, gunzipped, for breaking on purpose."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for source in MNIST.glob("*.gz"):
        (folder / source.name[:-3]).write_bytes(gzip.decompress(source.read_bytes()))
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A run folder from `reportgen train`: 1 epoch on 3,000 images."""
    from reportgen.cli import main

    out = tmp_path_factory.mktemp("trained") / "run"
    result = CliRunner().invoke(main, ["train", "-q", "--epochs", "1", "--train-limit", "3000",
                                       "--test-limit", "1000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
