"""Stage 2: train the LeNet, with checkpoints, resume, and one or many devices.

Reads top to bottom: settings, devices, checkpoints, the evaluation helper, the loop.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from reportgen import data, model, seed
from reportgen.errors import ContextError, TrainingError


# -- settings -------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    epochs: int = seed.EPOCHS
    batch_size: int = seed.BATCH_SIZE  # images per step, summed over all devices
    learning_rate: float = seed.LEARNING_RATE
    momentum: float = seed.MOMENTUM
    weight_decay: float = seed.WEIGHT_DECAY
    seed: int = seed.SEED  # weights and the order of every epoch follow from it

    def describe(self) -> dict:
        return {**asdict(self), "optimizer": "SGD with momentum (mxnet.optimizer.SGD)",
                "initializer": model.INITIALIZER_NAME,
                "loss": "softmax cross-entropy on the full2 logits"}


class Progress(Protocol):
    """What the loop reports to; cli.py draws it as a progress bar."""

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None: ...
    def update(self, batches_done: int, loss: float, accuracy: float) -> None: ...
    def end_epoch(self, record: dict) -> None: ...


# -- devices --------------------------------------------------------------------------

def parse_contexts(spec: str) -> list[mx.Context]:
    """'auto', 'cpu', 'gpu', 'gpu:0,1' or 'cpu:0,1' -> MXNet contexts.

    'auto' takes every GPU there is, else the CPU. Several CPU contexts run the
    data-parallel path exactly as several GPUs would, which is how it is tested.
    """
    spec = spec.strip().lower()
    gpus = mx.context.num_gpus()
    if spec == "auto":
        return [mx.gpu(i) for i in range(gpus)] or [mx.cpu(0)]
    kind, _, ids = spec.partition(":")
    if kind not in ("cpu", "gpu"):
        raise ContextError(f"--ctx {spec!r}: expected auto, cpu, gpu, cpu:0,1 or gpu:0,1")
    try:
        numbers = [int(i) for i in ids.split(",")] if ids else [0]
    except ValueError:
        raise ContextError(f"--ctx {spec!r}: device numbers must be integers, as in {kind}:0,1") from None
    if len(set(numbers)) != len(numbers) or min(numbers) < 0:
        raise ContextError(f"--ctx {spec!r}: device numbers must be distinct and not negative")
    if kind == "gpu":
        missing = [i for i in numbers if i >= gpus]
        if missing:
            raise ContextError(f"--ctx {spec}: no GPU {missing[0]} on this machine "
                               f"({gpus} GPU{'s' if gpus != 1 else ''} found)")
        return [mx.gpu(i) for i in numbers]
    return [mx.cpu(i) for i in numbers]


# -- checkpoints ----------------------------------------------------------------------

CHECKPOINT = "checkpoint.json"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _save_checkpoint(folder: Path, epoch: int, net: model.LeNet, trainer: gluon.Trainer,
                     identity: dict, history: dict) -> None:
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
    record = {"epoch": epoch, "stem": stem, "identity": identity, "history": history}
    _atomic_write_text(folder / CHECKPOINT, json.dumps(record))
    for old in folder.glob("epoch-*"):
        if not old.name.startswith(stem):
            old.unlink()


def _load_checkpoint(folder: Path, identity: dict) -> dict | None:
    path = folder / CHECKPOINT
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        saved = record["identity"]
    except (ValueError, KeyError, TypeError):
        raise TrainingError(f"{path}: unreadable checkpoint; delete {folder} to start afresh") from None
    for key, value in identity.items():
        if saved.get(key) != value:
            raise TrainingError(f"{path}: the checkpoint was made with {key}={saved.get(key)!r}, "
                                f"this run has {value!r}; resume with the same settings")
    return record


# -- evaluation helper ----------------------------------------------------------------

def evaluate_loss(net: model.LeNet, x: mx.nd.NDArray, y: mx.nd.NDArray,
                  batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), both on one device."""
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    n = x.shape[0]
    total_loss = mx.nd.zeros((1,), ctx=x.context)
    correct = mx.nd.zeros((1,), ctx=x.context)
    for start in range(0, n, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        short = batch_size - xb.shape[0]
        if short:  # pad to the batch size the cached graph was built for
            xb = mx.nd.concat(xb, mx.nd.zeros((short, *xb.shape[1:]), ctx=x.context), dim=0)
        logits = net.logits(xb)[:batch_size - short]
        total_loss += loss_fn(logits, yb).sum()
        correct += (logits.argmax(axis=1) == yb).sum()
    return float(total_loss.asscalar()) / n, float(correct.asscalar()) / n


# -- the loop -------------------------------------------------------------------------

def fit(dataset: data.Dataset, config: TrainConfig, contexts: list[mx.Context],
        checkpoint_dir: Path | None = None, resume: bool = False,
        progress: Progress | None = None, sync_every: int = 50) -> tuple[model.LeNet, dict]:
    """Train from scratch, or from the last checkpoint with resume=True.

    Returns the network and the history (the body of history.json). Every epoch
    ends with a checkpoint in checkpoint_dir, if one is given.
    """
    n_dev = len(contexts)
    n_train = len(dataset.train_x)
    if config.batch_size % n_dev:
        raise TrainingError(f"--batch-size {config.batch_size} does not split evenly over {n_dev} devices")
    if n_train < config.batch_size:
        raise TrainingError(f"{n_train} training images are fewer than one batch of {config.batch_size}")
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise TrainingError(f"--{name.replace('_', '-')} must be at least 1")
    # A partial last batch would change the graph's shape; each epoch's order is
    # different, so every image is still seen over the run.
    steps = n_train // config.batch_size

    identity = {**asdict(config), "epochs": None, "devices": n_dev,
                "data": dataset.checksums, "train_images": n_train, "test_images": len(dataset.test_x)}
    net = model.build(contexts, seed=config.seed)
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": config.learning_rate, "momentum": config.momentum,
                             "wd": config.weight_decay},
                            kvstore="device", update_on_kvstore=False)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    history: dict = {"batches": [], "epochs": []}
    first_epoch = 1

    record = _load_checkpoint(checkpoint_dir, identity) if resume and checkpoint_dir else None
    if record is not None:
        net.load_parameters(str(checkpoint_dir / f"{record['stem']}.params"), ctx=contexts)
        trainer.load_states(str(checkpoint_dir / f"{record['stem']}.states"))
        history = record["history"]
        first_epoch = record["epoch"] + 1

    # The whole data set lives on the first device; batches are slices of it.
    home = contexts[0]
    train_x = mx.nd.array(data.to_input(dataset.train_x), ctx=home)  # (n, 1, 28, 28)
    train_y = mx.nd.array(dataset.train_y, ctx=home, dtype="float32")  # (n,)
    test_x = mx.nd.array(data.to_input(dataset.test_x), ctx=home)
    test_y = mx.nd.array(dataset.test_y, ctx=home, dtype="float32")

    for epoch in range(first_epoch, config.epochs + 1):
        if progress:
            progress.start_epoch(epoch, config.epochs, steps)
        order = mx.nd.array(np.random.default_rng([config.seed, epoch]).permutation(n_train),
                            ctx=home, dtype="int64")
        xs, ys = train_x.take(order), train_y.take(order)  # this epoch's order, on device
        losses, hits = [], []  # per-batch NDArrays; read back every sync_every batches
        started = time.perf_counter()
        for step in range(steps):
            lo = step * config.batch_size
            x_parts = gluon.utils.split_and_load(xs[lo:lo + config.batch_size], contexts)
            y_parts = gluon.utils.split_and_load(ys[lo:lo + config.batch_size], contexts)
            with autograd.record():
                logits = [net.logits(x) for x in x_parts]  # (batch/n_dev, 10) each
                batch_losses = [loss_fn(z, y) for z, y in zip(logits, y_parts)]
            for part in batch_losses:
                part.backward()
            trainer.step(config.batch_size)
            losses.append(mx.nd.add_n(*[part.sum().as_in_context(home) for part in batch_losses]))
            hits.append(mx.nd.add_n(*[(z.argmax(axis=1) == y).sum().as_in_context(home)
                                      for z, y in zip(logits, y_parts)]))
            if (step + 1) % sync_every == 0 or step + 1 == steps:
                done = _check_finite(losses, epoch, checkpoint_dir)
                if progress:
                    progress.update(step + 1, done[-sync_every:].mean() / config.batch_size,
                                    np.concatenate([h.asnumpy() for h in hits[-sync_every:]]).mean()
                                    / config.batch_size)
        seconds = time.perf_counter() - started

        batch_loss = np.concatenate([part.asnumpy() for part in losses]) / config.batch_size
        batch_acc = np.concatenate([part.asnumpy() for part in hits]) / config.batch_size
        history["batches"].extend(
            {"epoch": epoch, "batch": i + 1, "loss": float(loss), "accuracy": float(acc)}
            for i, (loss, acc) in enumerate(zip(batch_loss, batch_acc)))
        eval_started = time.perf_counter()
        test_loss, test_accuracy = evaluate_loss(net, test_x, test_y, config.batch_size)
        epoch_record = {
            "epoch": epoch, "train_loss": float(batch_loss.mean()),
            "train_accuracy": float(batch_acc.mean()), "test_loss": test_loss,
            "test_accuracy": test_accuracy, "seconds": seconds,
            "eval_seconds": time.perf_counter() - eval_started,
        }
        history["epochs"].append(epoch_record)
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir, epoch, net, trainer, identity, history)
        if progress:
            progress.end_epoch(epoch_record)
    return net, history


def _check_finite(losses: list[mx.nd.NDArray], epoch: int, checkpoint_dir: Path | None) -> np.ndarray:
    """Read the batch losses so far; stop at the first that is NaN or infinite."""
    values = np.concatenate([part.asnumpy() for part in losses])
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        kept = (f"the checkpoint of epoch {epoch - 1} stays in {checkpoint_dir}"
                if checkpoint_dir and epoch > 1 else "no checkpoint was written")
        raise TrainingError(f"the loss became {values[bad[0]]} at epoch {epoch}, batch {bad[0] + 1}; "
                            f"try a smaller --lr; {kept}")
    return values

