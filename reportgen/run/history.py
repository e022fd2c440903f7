"""What training hands on besides the network: every batch's and every epoch's numbers.

A value of its own, without mxnet, so that the figures, the report and `reportgen render`
read it without loading the training stage. history.json is its serialization.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.errors import DataError
from reportgen.run import files, schema


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float  # mean over the epoch's batches
    train_accuracy: float
    test_loss: float  # the whole test set, after the epoch
    test_accuracy: float
    seconds: float  # training steps only
    eval_seconds: float  # the test pass after it
    images_per_second: float  # training images per second of `seconds`


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make field-wise == ambiguous
class History:
    batch_epoch: np.ndarray  # (b,) int64, the epoch of each batch, in training order
    batch_loss: np.ndarray  # (b,) float64, mean cross-entropy over the batch
    batch_accuracy: np.ndarray  # (b,) float64, share of the batch classified right
    epochs: tuple[EpochRecord, ...]

    @classmethod
    def empty(cls) -> History:
        """No training: a loaded model whose history was not kept."""
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), ())

    @property
    def batches(self) -> int:
        return len(self.batch_loss)

    def with_epoch(self, losses: np.ndarray, accuracies: np.ndarray, record: EpochRecord) -> History:
        """This history and one more epoch: its batches' losses and accuracies, and its record."""
        return replace(
            self,
            batch_epoch=np.r_[self.batch_epoch, np.full(len(losses), record.epoch, np.int64)],
            batch_loss=np.r_[self.batch_loss, np.asarray(losses, np.float64)],
            batch_accuracy=np.r_[self.batch_accuracy, np.asarray(accuracies, np.float64)],
            epochs=(*self.epochs, record),
        )

    def to_json(self) -> dict[str, Any]:
        """The body of history.json: a record per batch (numbered within its epoch) and per epoch."""
        starts = np.flatnonzero(np.r_[True, self.batch_epoch[1:] != self.batch_epoch[:-1]])
        within = np.arange(self.batches) - np.repeat(starts, np.diff(np.r_[starts, self.batches]))
        batches = (
            [
                {"epoch": int(e), "batch": int(i) + 1, "loss": float(loss), "accuracy": float(acc)}
                for e, i, loss, acc in zip(self.batch_epoch, within, self.batch_loss, self.batch_accuracy)
            ]
            if self.batches
            else []
        )
        return files.jsonable({"batches": batches, "epochs": [asdict(e) for e in self.epochs]})

    @classmethod
    def from_json(cls, body: Any, source: str = "history.json") -> History:
        """Read history.json's body back, every value checked; anything not shaped like one
        is a DataError naming `source` and the value."""
        try:
            batches = schema.each(schema.get(body, "batches"), "batches", _batch)
            epochs = tuple(schema.each(schema.get(body, "epochs"), "epochs", _epoch))
        except schema.Invalid as e:
            raise DataError(f"{source}: not a reportgen history ({e})") from e
        return cls(
            np.array([b[0] for b in batches], np.int64).reshape(-1),
            np.array([b[1] for b in batches], np.float64).reshape(-1),
            np.array([b[2] for b in batches], np.float64).reshape(-1),
            epochs,
        )

    def save(self, path: Path) -> Path:
        return files.write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> History:
        # Every value is checked as it is read, so the nesting needs no walk of its own.
        return cls.from_json(files.read_json(path, MAX_BYTES, max_nesting=None), str(path))


# The largest history.json read: 20 epochs of 600 batches are 1.2 MB, a million batches 60 MB.
MAX_BYTES = 64 << 20

# The range of each number of an epoch's record; a loss is a mean cross-entropy, never negative.
_EPOCH_RANGES = {
    "train_loss": (0.0, math.inf),
    "train_accuracy": (0.0, 1.0),
    "test_loss": (0.0, math.inf),
    "test_accuracy": (0.0, 1.0),
    "seconds": (0.0, math.inf),
    "eval_seconds": (0.0, math.inf),
    "images_per_second": (0.0, math.inf),
}


def _batch(body: Any, where: str) -> tuple[int, float, float]:
    """(epoch, loss, accuracy) of one batch's record; null as NaN."""
    return (
        schema.field(body, "epoch", where, schema.integer),
        schema.field(body, "loss", where, lambda v, w: schema.number(v, w, 0.0, math.inf, null=True)),
        schema.field(body, "accuracy", where, lambda v, w: schema.proportion(v, w, null=True)),
    )


def _epoch(body: Any, where: str) -> EpochRecord:
    """One epoch's record; a number it lacks (an older history) reads as NaN."""
    numbers = {
        name: schema.number(schema.obj(body, where).get(name), f"{where}.{name}", low, high, null=True)
        for name, (low, high) in _EPOCH_RANGES.items()
    }
    return EpochRecord(epoch=schema.field(body, "epoch", where, schema.integer), **numbers)


def training_seconds(recorded: float | None, history: History) -> float | None:
    """How long training took: as the run that trained the model recorded it (its training
    stage), else the epochs of the model's history; None if neither says."""
    if recorded is not None:
        return recorded
    seconds = [e.seconds for e in history.epochs if e.seconds is not None and math.isfinite(e.seconds)]
    return sum(seconds) if seconds else None
