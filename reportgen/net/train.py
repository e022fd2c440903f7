"""Train the LeNet, with checkpoints, resume, on one or many devices, on one or many machines.

Reads top to bottom: settings, devices, checkpoints, the evaluation helper, the loop.
Several machines train through MXNet's distributed kvstore; distributed.py joins the job.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from reportgen import data, notebook
from reportgen.errors import TrainingError
from reportgen.net import checkpoint, distributed, model, sgd
from reportgen.run.history import EpochRecord, History

log = logging.getLogger(__name__)

# -- settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = notebook.EPOCHS
    batch_size: int = notebook.BATCH_SIZE  # images per step, summed over all devices
    learning_rate: float = notebook.LEARNING_RATE
    momentum: float = notebook.MOMENTUM
    weight_decay: float = notebook.WEIGHT_DECAY
    seed: int = notebook.SEED  # weights and the order of every epoch follow from it
    # Where gradients are summed: over this machine's devices (local: on the CPU, device: on
    # them), or over every worker of a distributed job (dist_sync, dist_device_sync).
    kvstore: str = distributed.DEFAULT_KVSTORE

    def describe(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "optimizer": "SGD with momentum (mxnet.optimizer.SGD)",
            "initializer": model.INITIALIZER_NAME,
            "loss": "softmax cross-entropy on the full2 logits",
        }


# Told the batches done so far, the running loss and accuracy, and images per second.
Update = Callable[[int, float, float, float], None]


class Progress(Protocol):
    """What the loop reports to; the command line draws it as a progress bar (cli.progress.EpochBar).

    `epoch()` is a context manager, so whatever it shows is closed even when training
    stops mid-epoch (an error, Ctrl-C).
    """

    def epoch(self, epoch: int, epochs: int, batches: int) -> AbstractContextManager[Update]: ...
    def end_epoch(self, record: EpochRecord) -> None: ...


def _no_update(batches_done: int, loss: float, accuracy: float, images_per_second: float) -> None:
    pass


# -- evaluation helper ----------------------------------------------------------------


class Objective(gluon.HybridBlock):
    """What a training step computes, as one hybridized graph: each image's cross-entropy on
    the full2 logits, and whether each is classified right.

    One cached graph per step instead of the net plus half a dozen small operators for the
    loss and the bookkeeping: each operator called from Python costs tens of microseconds.
    Their sums are taken outside it: the graph's backward pass runs over all its outputs,
    and a sum among them cost a zero head gradient, its backward and an add_n every step.
    """

    def __init__(self, net: model.LeNet) -> None:
        super().__init__(prefix="objective_")
        self.net = net  # shares the network's parameters
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def hybrid_forward(self, F, x, y):  # noqa: ANN001 (F is mx.nd or mx.sym)
        logits = self.net.logits(x)  # (batch, 10)
        loss = self.loss(logits, y)  # (batch,)
        right = F.argmax(logits, axis=1) == y  # (batch,) 1.0 or 0.0
        return loss, right


def evaluate_loss(objective: Objective, x: mx.nd.NDArray, y: mx.nd.NDArray, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), both on one device."""
    n = x.shape[0]
    total_loss = mx.nd.zeros((1,), ctx=x.context)
    correct = mx.nd.zeros((1,), ctx=x.context)
    for start in range(0, n, batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        short = batch_size - xb.shape[0]
        if short:  # pad to the batch size the cached graph was built for; the padding is not counted
            xb = mx.nd.concat(xb, mx.nd.zeros((short, *xb.shape[1:]), ctx=x.context), dim=0)
            yb = mx.nd.concat(yb, mx.nd.zeros((short,), ctx=x.context), dim=0)
            loss, right = objective(xb, yb)
            total_loss += loss[: batch_size - short].sum()
            correct += right[: batch_size - short].sum()
        else:
            loss, right = objective(xb, yb)
            total_loss += loss.sum()
            correct += right.sum()
    return float(total_loss.asscalar()) / n, float(correct.asscalar()) / n


# -- the loop -------------------------------------------------------------------------


def _steps(dataset: data.Dataset, config: TrainConfig, n_dev: int, workers: int = 1) -> int:
    """Batches per epoch, after checking the settings can train at all.

    --batch-size is the whole step's batch: split over the workers, then over each one's devices.
    """
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise TrainingError(f"--{name.replace('_', '-')} must be at least 1")
    n_train = len(dataset.train_x)
    if config.batch_size % workers:
        raise TrainingError(f"--batch-size {config.batch_size} does not split evenly over {workers} workers")
    if config.batch_size // workers % n_dev:
        share = (
            f"each worker's {config.batch_size // workers} images"
            if workers > 1
            else f"--batch-size {config.batch_size}"
        )
        raise TrainingError(f"{share} does not split evenly over {n_dev} devices")
    if n_train < config.batch_size:
        raise TrainingError(f"{n_train} training images are fewer than one batch of {config.batch_size}")
    # A partial last batch would change the graph's shape; each epoch's order is
    # different, so every image is still seen over the run. Every worker takes as many steps
    # (a distributed step waits for all of them).
    return n_train // config.batch_size


def _share(order: np.ndarray, steps: int, batch_size: int, job: distributed.Job) -> np.ndarray:
    """This worker's images of an epoch's order: its slice of each step's batch.

    Batch s is order[s*B : (s+1)*B] on every worker, as on one machine; worker r takes the
    r-th of its equal slices, so the workers together take the steps one machine would.
    """
    per_worker = batch_size // job.workers
    return order[: steps * batch_size].reshape(steps, job.workers, per_worker)[:, job.rank].reshape(-1)


def fit(
    dataset: data.Dataset,
    config: TrainConfig,
    contexts: list[mx.Context],
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    sync_every: int = 50,
    job: distributed.Job | None = None,
    shown_as: Path | None = None,
) -> tuple[model.LeNet, History]:
    """Train from scratch, or from the last checkpoint with resume=True.

    Returns the network and its History. Every epoch ends with a checkpoint in
    checkpoint_dir, if one is given. With a distributed kvstore, `job` (distributed.join)
    is this worker's place in the job: it trains its share of every batch; only rank 0
    evaluates on the test set (the others record NaN) and writes checkpoints; the job is
    left before this returns, so the other nodes can end while rank 0 goes on. `shown_as` is
    the checkpoint folder as messages name it: checkpoint_dir may be a staging copy of it.
    """
    if distributed.is_distributed(config.kvstore) != (job is not None):
        raise ValueError(f"kvstore {config.kvstore!r}: pass job=distributed.join(kvstore) exactly when distributed")
    rank, workers = (job.rank, job.workers) if job else (0, 1)
    steps = _steps(dataset, config, len(contexts), workers)
    batch = (config.batch_size // workers, config.batch_size)  # this worker's images per step, the step's
    identity = _identity(dataset, config, contexts)
    net, trainer = _network(config, contexts, job)
    if job is not None:
        _start_together(net, trainer, contexts, job, {**identity, "epochs": config.epochs, "devices": None})
    objective = Objective(net)
    objective.hybridize(static_alloc=True, static_shape=True)
    history, first_epoch = History.empty(), 1
    if resume and checkpoint_dir is not None:
        named = shown_as or checkpoint_dir
        try:
            history, first_epoch = checkpoint.resume(checkpoint_dir, identity, net, trainer, contexts)
        except TrainingError as e:  # named as the user knows it, not as the staging copy
            raise TrainingError(str(e).replace(str(checkpoint_dir), str(named))) from e
        log.info(_resuming(first_epoch - 1, config.epochs, named))
    elif checkpoint_dir is not None and rank == 0 and (saved := checkpoint.saved_epoch(checkpoint_dir)):
        log.info(
            f"starting fresh: the checkpoint of epoch {saved} in {checkpoint_dir} will be replaced "
            "(--resume continues it)"
        )
    # One update call per parameter on one device (sgd.py: the same arithmetic), the Trainer's across several.
    step_weights = sgd.stepper(trainer, config.batch_size, direct=job is None and len(contexts) == 1)
    # The whole data set lives on the first device; batches are slices of it.
    home = contexts[0]
    train_x, train_y = _on_device(dataset.train_x, dataset.train_y, home)
    test = _on_device(dataset.test_x, dataset.test_y, home) if rank == 0 else None
    saving = checkpoint_dir if rank == 0 else None
    for epoch in range(first_epoch, config.epochs + 1):
        order = _order(config, epoch, len(train_x), steps, job)
        shown = progress.epoch(epoch, config.epochs, steps) if progress else contextlib.nullcontext(_no_update)
        check = _stop_if_not_finite(epoch)
        with shown as update:
            if job is not None:
                update = job.kicking(update, f"training epoch {epoch}")
            on_device = mx.nd.array(order, ctx=home, dtype="int64")
            batches = (train_x.take(on_device), train_y.take(on_device))
            losses, hits, seconds = _train_epoch(
                objective, step_weights, batches, contexts, batch, sync_every, check, update
            )
        record = _epoch_record(epoch, objective, losses, hits, seconds, test, config.batch_size)
        history = history.with_epoch(losses, hits, record)
        if saving is not None:
            checkpoint.save(saving, epoch, net, trainer, identity, history)
        if progress:
            progress.end_epoch(record)
    if job is not None:
        job.release(trainer)
    return net, history


def _resuming(done: int, epochs: int, folder: Path) -> str:
    """What --resume does with a checkpoint of `done` epochs, in one line; refused past --epochs
    (the model would be recorded with fewer epochs than it had)."""
    if done == 0:
        return f"starting fresh: no checkpoint in {folder}"
    if done > epochs:
        raise TrainingError(
            f"--epochs {epochs}: the checkpoint in {folder} is already at epoch {done}; give --epochs {done} "
            "or more to continue it, or drop --resume to train from scratch"
        )
    if done == epochs:
        return f"already at epoch {done} of {epochs} (the checkpoint in {folder}): nothing to train"
    return f"resuming at epoch {done + 1} of {epochs} (the checkpoint of epoch {done} in {folder})"


def _identity(dataset: data.Dataset, config: TrainConfig, contexts: list[mx.Context]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed."""
    return {
        **asdict(config),
        "epochs": None,
        "kvstore": None,  # how gradients are summed does not change what is trained
        "devices": len(contexts),
        "data": dataset.checksums,
        "train_images": len(dataset.train_x),
        "test_images": len(dataset.test_x),
    }


def _order(config: TrainConfig, epoch: int, n_train: int, steps: int, job: distributed.Job | None) -> np.ndarray:
    """The epoch's training images, in the order this process trains on them.

    One permutation of the whole training set per epoch, from the seed and the epoch alone:
    every worker of a job draws the same one and takes its share of it (_share).
    """
    order = np.random.default_rng([config.seed, epoch]).permutation(n_train)
    return order if job is None else _share(order, steps, config.batch_size, job)


def _network(
    config: TrainConfig, contexts: list[mx.Context], job: distributed.Job | None = None
) -> tuple[model.LeNet, gluon.Trainer]:
    """A fresh LeNet on every device, and its SGD trainer.

    The optimizer runs on each worker, on the summed gradients (update_on_kvstore=False): the
    same update on every worker keeps them identical, and the trainer can save its state for
    a checkpoint, which MXNet refuses when the servers run the optimizer.
    """
    net = model.build(contexts, seed=config.seed)
    trainer = gluon.Trainer(
        net.collect_params(),
        "sgd",
        {"learning_rate": config.learning_rate, "momentum": config.momentum, "wd": config.weight_decay},
        kvstore=job.kvstore if job is not None else config.kvstore,
        update_on_kvstore=False,
    )
    return net, trainer


def _start_together(
    net: model.LeNet, trainer: gluon.Trainer, contexts: list[mx.Context], job: distributed.Job, settings: dict
) -> None:
    """Check that this worker trains rank 0's settings on rank 0's data (distributed.Job.agree);
    give every worker rank 0's initial weights, and wait until they have them.

    Left to itself, Gluon sends them at the first step: each weight is pulled from the servers
    beside that step's push-and-pull of its gradient, under the same key. With the optimizer
    on the workers the servers hold the summed gradient once every worker has pushed, so a
    pull answered after that returns the gradient as the weights: a third of the runs here
    ended with wrong or unequal weights (mxnet 1.9.1). Gluon has no public call for "send the
    weights now", hence the two private ones.
    """
    job.agree(settings)
    for ctx in contexts:  # the weights' shapes are known after a first forward pass
        net.logits(mx.nd.zeros((1, 1, 28, 28), ctx=ctx))
    trainer._init_kvstore()
    trainer._init_params()
    mx.nd.waitall()


def _on_device(images: np.ndarray, labels: np.ndarray, ctx: mx.Context) -> tuple[mx.nd.NDArray, mx.nd.NDArray]:
    """Images as the network's input (n, 1, 28, 28) and labels as float32 (n,), on `ctx`."""
    return mx.nd.array(data.to_input(images), ctx=ctx), mx.nd.array(labels, ctx=ctx, dtype="float32")


def _train_epoch(
    objective: Objective,
    step_weights: Callable[[], None],
    shuffled: tuple[mx.nd.NDArray, mx.nd.NDArray],
    contexts: list[mx.Context],
    batch: tuple[int, int],
    sync_every: int,
    check: Callable[[np.ndarray], None],
    update: Update,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One pass over the shuffled (images, labels) in batches; returns each batch's mean loss
    and accuracy, and the seconds it took.

    `batch` is (this process's images per step, the whole step's): they differ when several
    workers share each step. The gradients are summed over the whole step's images (the
    kvstore sums the workers'), so the step divides by the whole step's batch.

    Losses and hits stay on the device and are read back every sync_every batches: reading
    them every batch costs a quarter of the throughput (benchmarks/RESULTS.md).
    """
    xs, ys = shuffled
    batch_size, step_size = batch
    steps = len(xs) // batch_size
    home = contexts[0]
    losses, hits = [], []  # per-batch NDArrays of shape (1,), on the first device
    read: list[np.ndarray] = []  # what has been read back: (losses, hits) blocks
    started = time.perf_counter()
    for step in range(steps):
        lo = step * batch_size
        if len(contexts) == 1:  # no split, no copy, no sum across devices
            with autograd.record():
                loss, right = objective(xs[lo : lo + batch_size], ys[lo : lo + batch_size])
            loss.backward()
            loss_sum, right_sum = loss.sum(), right.sum()
        else:
            x_parts = gluon.utils.split_and_load(xs[lo : lo + batch_size], contexts)
            y_parts = gluon.utils.split_and_load(ys[lo : lo + batch_size], contexts)
            with autograd.record():
                parts = [objective(x, y) for x, y in zip(x_parts, y_parts)]
            for part in parts:
                part[0].backward()
            loss_sum = mx.nd.add_n(*[part[0].sum().as_in_context(home) for part in parts])
            right_sum = mx.nd.add_n(*[part[1].sum().as_in_context(home) for part in parts])
        step_weights()
        losses.append(loss_sum)
        hits.append(right_sum)
        if (step + 1) % sync_every == 0 or step + 1 == steps:
            read.append(mx.nd.stack(mx.nd.concat(*losses, dim=0), mx.nd.concat(*hits, dim=0)).asnumpy() / batch_size)
            losses, hits = [], []
            done = np.concatenate(read, axis=1)  # (2, batches so far)
            check(done[0])
            rate = (step + 1) * step_size / (time.perf_counter() - started)
            update(step + 1, float(read[-1][0].mean()), float(read[-1][1].mean()), rate)
    seconds = time.perf_counter() - started
    done = np.concatenate(read, axis=1)
    return done[0], done[1], seconds


def _epoch_record(
    epoch: int,
    objective: Objective,
    losses: np.ndarray,
    hits: np.ndarray,
    seconds: float,
    test: tuple[mx.nd.NDArray, mx.nd.NDArray] | None,
    batch_size: int,
) -> EpochRecord:
    """The epoch's numbers: its batches' means, and the test set after it (NaN without one).

    `batch_size` is the whole step's: images per second count every worker's."""
    started = time.perf_counter()
    test_loss, test_accuracy = evaluate_loss(objective, *test, batch_size) if test else (math.nan, math.nan)
    return EpochRecord(
        epoch=epoch,
        train_loss=float(losses.mean()),
        train_accuracy=float(hits.mean()),
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        seconds=seconds,
        eval_seconds=time.perf_counter() - started,
        images_per_second=len(losses) * batch_size / seconds,
    )


def _stop_if_not_finite(epoch: int) -> Callable[[np.ndarray], None]:
    """A check of the batch losses so far that stops training at the first NaN or infinity.

    The message does not point at the checkpoint: the command line's is in its staging folder,
    which goes with the failed command (the run folder keeps its own, as it was).
    """

    def check(values: np.ndarray) -> None:
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise TrainingError(
                f"the loss became {values[bad[0]]} at epoch {epoch}, batch {bad[0] + 1}; try a smaller --lr"
            )

    return check
