"""Shared fixtures: the embedded MNIST, small slices of it, a CLI runner, a small trained run,
and hand-made values of each stage for the tests that start after it."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import shutil
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from reportgen import data, notebook
from reportgen.data import DataRecord
from reportgen.layers import LAYERS, SHAPES, TANH_RANGE
from reportgen.report.sections import BY_CLASS
from reportgen.run.evaluation import Evaluation
from reportgen.run.explanation import Attributions, Features
from reportgen.run.history import EpochRecord, History
from reportgen.run.inspection import Inspection
from reportgen.run.record import TRAINED_HERE, ModelRecord, RunRecord

BY_CLASS_KEYS = [key for key, _ in BY_CLASS]

MNIST = data.DEFAULT_DATA_DIR

# The fuzz tests (test_fuzz.py) run the same examples on every machine: derandomized, no
# example database written into the checkout, a deadline per example (ms) far above their
# time; drawing arrays may be slow on a busy machine, which is no failure of the readers.
settings.register_profile(
    "reportgen",
    derandomize=True,
    database=None,
    deadline=2000,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("reportgen")


def pytest_configure(config) -> None:
    """Ctrl-C as a terminal delivers it. A shell that starts a command in the background
    without job control (`make test &` in a script) starts it with SIGINT ignored, and every
    process inherits that; reportgen then rightly keeps ignoring it (as under nohup), and the
    tests that press Ctrl-C would fail."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory) -> Path:
    """The figure cache's secret (report/figures/cache.py) made in the session's own folder, not
    in the user's home; commands run in subprocesses inherit it."""
    home = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(home)
    return home


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def one_line_error(result, *fragments: str) -> None:
    """Exit code 2, a single 'error: ...' line on stderr holding each fragment, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output


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
    result = CliRunner().invoke(
        main, ["train", "-q", "--epochs", "1", "--train-limit", "3000", "--test-limit", "1000", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def built_run(tmp_path_factory) -> Path:
    """A run folder from `reportgen build`, HTML and PDF: 1 epoch on 1,000 images, 300 tested.
    Tests copy it (copy_of) before they change or attack it."""
    from reportgen.cli import main

    out = tmp_path_factory.mktemp("built") / "run"
    args = ["build", "-q", "--epochs", "1", "--train-limit", "1000", "--test-limit", "300", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def copy_of(run: Path, into: Path) -> Path:
    """A copy of a run folder, its checkpoint too; `into` must not exist yet."""
    shutil.copytree(run, into, symlinks=True)
    return into


def forge(run: Path, name: str, payload: bytes) -> None:
    """Write run/name and record its SHA-256 and size in the run's manifest, as someone who
    wants it published would."""
    path = run / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))


def everything(folder: Path) -> dict[str, str]:
    """digest() of every entry under a folder, hidden ones and links (by their target's name) too."""
    out = {}
    for p in sorted(folder.rglob("*")):
        key = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[key] = "/"
    return out


# -- hand-made stage values, shared by the figure, report and pipeline tests ------------------


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under a folder, by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def fake_inspection(test_labels: np.ndarray, cases: int = 1, seed: int = 7) -> Inspection:
    """An Inspection of test images 0, 3, 6, ... with random values of each layer's range."""
    rng = np.random.default_rng(seed)
    indices = np.arange(cases, dtype=np.int64) * 3
    outputs = {}
    for layer in LAYERS:
        x = rng.normal(0, 2, size=(cases, *SHAPES[layer])).astype(np.float32)
        outputs[layer] = np.tanh(x) if layer in TANH_RANGE else x
    logits = outputs["full2"].astype(np.float64)
    outputs["softm"] = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    return Inspection(
        indices=indices,
        labels=np.asarray(test_labels)[indices].astype(np.int64),
        predictions=outputs["softm"].argmax(1).astype(np.int64),
        outputs=outputs,
        kernels={
            "conv1": rng.normal(0, 0.3, (20, 1, 5, 5)).astype(np.float32),
            "conv2": rng.normal(0, 0.05, (50, 20, 5, 5)).astype(np.float32),
        },
    )


def metrics_body(worst_count: int = 10) -> dict:
    """A metrics.json body by hand: the seed's table and printed statistics, a worst pair of
    4s read as 9s, three confident mistakes, and a calibration with two empty bins."""
    overall = {key: (None if math.isnan(value) else value) for key, value in notebook.OVERALL.items()}
    by_class = [{"class": k, **{key: 0.99 for key in BY_CLASS_KEYS}} for k in range(10)]
    by_class[3]["f1"] = None  # NA, as caret gives for an undefined F1
    probabilities = [[0.0] * 10 for _ in range(worst_count)]
    for p in probabilities:
        p[9], p[4] = 0.8, 0.2
    bins = [
        {"lower": k / 10, "upper": (k + 1) / 10, "count": 10, "confidence": k / 10 + 0.05, "accuracy": k / 10}
        for k in range(10)
    ]
    bins[1].update(count=0, confidence=None, accuracy=None)
    bins[2].update(count=0, confidence=None, accuracy=None)
    bins[9].update(count=9920, confidence=0.995, accuracy=0.993)
    return {
        "n_test": 10000,
        "confusion_matrix": [list(row) for row in notebook.CONFUSION_TABLE],
        "overall": overall,
        "by_class": by_class,
        "worst_pair": {
            "prediction": 9,
            "reference": 4,
            "count": worst_count,
            "indices": [4, 6, 19, 33, 47, 60, 71, 80, 91, 95][:worst_count],
            "probabilities": probabilities,
        },
        "top_errors": [
            {
                "index": 4,
                "label": 4,
                "prediction": 9,
                "confidence": 0.97,
                "probabilities": [0.0] * 4 + [0.03] + [0.0] * 4 + [0.97],
            },
            {
                "index": 8,
                "label": 5,
                "prediction": 3,
                "confidence": 0.9,
                "probabilities": [0.0] * 3 + [0.9] + [0.0, 0.1] + [0.0] * 4,
            },
            {
                "index": 12,
                "label": 7,
                "prediction": 2,
                "confidence": 0.6,
                "probabilities": [0.0] * 2 + [0.6] + [0.0] * 4 + [0.4] + [0.0] * 2,
            },
        ],
        "calibration": {"bins": bins, "ece": 0.0123},
    }


def make_evaluation(body: dict | None = None) -> Evaluation:
    return Evaluation.from_json(body or metrics_body())


def make_history(epochs: int = 2, batches: int = 30) -> History:
    """A run whose loss falls as 2.3/step and accuracy rises as 1 - 0.9/step."""
    steps = np.arange(1, epochs * batches + 1)
    return History(
        batch_epoch=np.repeat(np.arange(1, epochs + 1), batches),
        batch_loss=2.3 / steps,
        batch_accuracy=1 - 0.9 / steps,
        epochs=tuple(
            EpochRecord(
                epoch=e,
                train_loss=0.5 / e,
                train_accuracy=0.9 + 0.01 * e,
                test_loss=0.4 / e,
                test_accuracy=0.95 + 0.01 * e,
                seconds=10.0 + e,
                eval_seconds=1.5,
                images_per_second=5000.0 + e,
            )
            for e in range(1, epochs + 1)
        ),
    )


def make_record(**changes) -> RunRecord:
    """The record of a two-epoch run on the published MNIST, as a build writes it."""
    record = RunRecord(
        command="reportgen build --epochs 2",
        arguments={"epochs": 2, "out": "output"},
        contexts=("cpu(0)",),
        data=DataRecord(
            dir=None,
            files=dict(notebook.MNIST_SHA256),
            published_mnist=True,
            train_images=60000,
            test_images=10000,
            train_total=60000,
            test_total=10000,
        ),
        model=ModelRecord(source=TRAINED_HERE, epoch=2),
        training={
            "epochs": 2,
            "batch_size": 100,
            "learning_rate": 0.05,
            "momentum": 0.9,
            "weight_decay": 1e-5,
            "seed": 42,
            "initializer": "Xavier",
            "optimizer": "SGD",
        },
        title="LeNet on MNIST",
        timings={"data": 1.5, "train": 83.0, "evaluate": 2.0},
        created="2026-11-28T17:00:00+00:00",
        reportgen="0.1.0",
        versions={"python": "3.11.9", "mxnet": "1.9.1", "weasyprint": "70.0"},
        platform="Linux-x86_64",
    )
    return replace(record, **changes)


def scored(predictions, labels, confidence: float = 0.9) -> Evaluation:
    """An evaluation (reportgen.run.evaluation.score) of hand-chosen predictions: each image gives
    `confidence` to its predicted digit and shares the rest evenly."""
    from reportgen.run import evaluation

    predictions = np.asarray(predictions, np.int64)
    probabilities = np.full((len(predictions), 10), (1 - confidence) / 9, np.float32)
    probabilities[np.arange(len(predictions)), predictions] = confidence
    return evaluation.score(probabilities, np.asarray(labels, np.int64))


# -- the explanations' files, hand-made (test_explanation, test_fuzz) ------------------------


def fake_attributions(n: int = 3, seed: int = 0) -> Attributions:
    rng = np.random.default_rng(seed)
    ig = rng.normal(0, 0.1, (n, 28, 28)).astype(np.float32)
    baseline = rng.normal(size=n)
    return Attributions(
        indices=np.arange(n, dtype=np.int64) * 4,
        targets=np.array([3, 1, 7][:n] + [0] * max(0, n - 3), np.int64),
        versus=np.array([5, -1, 2][:n] + [-1] * max(0, n - 3), np.int64),
        integrated_gradients=ig,
        occlusion=rng.normal(size=(n, 13, 13)).astype(np.float32),
        occlusion_window=4,
        occlusion_stride=2,
        score_image=baseline + ig.reshape(n, -1).sum(axis=1, dtype=np.float64),
        score_baseline=baseline,
        steps=np.full(n, 64, np.int64),
    )


def fake_features(n_test: int = 100, n_train: int = 300) -> Features:
    rng = np.random.default_rng(1)
    return Features(
        act3_pca=rng.normal(size=(n_test, 2)).astype(np.float32),
        explained_variance_ratio=np.array([0.2, 0.1]),
        neighbours=np.array([[5, 6, 7, 8, 9], [1, 0, 2, 3, 4]], np.int64),
        neighbour_cases=np.array([4, 8], np.int64),
        neighbour_distances=np.array([[1.0, 1.5, 2.0, 2.0, 3.0], [0.5, 0.6, 0.7, 0.8, 0.9]]),
        neighbour_labels=np.array([[9, 9, 4, 9, 7], [3, 3, 5, 3, 3]], np.int64),
        neighbour_images=rng.integers(0, 256, (2, 5, 28, 28)).astype(np.uint8),
        train_images=n_train,
    )
