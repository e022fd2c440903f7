"""Checkpoints: the last epoch's parameters, optimizer state and history, for --resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import mxnet as mx
from mxnet import gluon

from reportgen.errors import TrainingError
from reportgen.net import model
from reportgen.run.history import History

CHECKPOINT = "checkpoint.json"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save(
    folder: Path, epoch: int, net: model.LeNet, trainer: gluon.Trainer, identity: dict[str, Any], history: History
) -> None:
    """Parameters and optimizer state first, then the JSON that names them.

    The JSON is the commit point: an interrupted save leaves the previous
    checkpoint in force, never a half-written one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"epoch-{epoch:04d}"
    for suffix, save in ((".params", net.save_parameters), (".states", trainer.save_states)):
        tmp = folder / f".{stem}{suffix}.tmp"
        save(str(tmp))
        os.replace(tmp, folder / f"{stem}{suffix}")
    record = {"epoch": epoch, "stem": stem, "identity": identity, "history": history.to_json()}
    _atomic_write_text(folder / CHECKPOINT, json.dumps(record))
    for old in folder.glob("epoch-*"):
        if not old.name.startswith(stem):
            old.unlink()


def _load(folder: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    path = folder / CHECKPOINT
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        saved = record["identity"]
    except (ValueError, KeyError, TypeError) as e:
        raise TrainingError(f"{path}: unreadable checkpoint; delete {folder} to start afresh") from e
    for key, value in identity.items():
        if saved.get(key) != value:
            raise TrainingError(
                f"{path}: the checkpoint was made with {key}={saved.get(key)!r}, "
                f"this run has {value!r}; resume with the same settings"
            )
    return record


def saved_epoch(folder: Path) -> int | None:
    """The epoch of the checkpoint in `folder`, or None if there is none (or none readable)."""
    try:
        epoch = json.loads((folder / CHECKPOINT).read_text()).get("epoch")
    except (OSError, ValueError, AttributeError):
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def resume(
    folder: Path, identity: dict[str, Any], net: model.LeNet, trainer: gluon.Trainer, contexts: list[mx.Context]
) -> tuple[History, int]:
    """Parameters, optimizer state and history from the last checkpoint; the epoch to start at."""
    record = _load(folder, identity)
    if record is None:
        return History.empty(), 1
    net.load_parameters(str(folder / f"{record['stem']}.params"), ctx=contexts)
    trainer.load_states(str(folder / f"{record['stem']}.states"))
    return History.from_json(record["history"], str(folder / CHECKPOINT)), record["epoch"] + 1
