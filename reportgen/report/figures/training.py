"""Section 4, Training: per-batch and per-epoch curves."""

from __future__ import annotations

import math

import numpy as np
from matplotlib import ticker

from reportgen import notebook
from reportgen.report.figures.style import (
    BLUE,
    DARK,
    GREY,
    HATCH,
    VERMILION,
    Figure,
    finish,
    message,
    new,
    share,
    styled,
)
from reportgen.run.history import History

# -- training ---------------------------------------------------------------------------


def _moving_average(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred mean over `window` batches; returns (x positions, means), x counted from 1."""
    kernel = np.ones(window) / window
    means = np.convolve(values, kernel, mode="valid")
    x = np.arange(len(means)) + 1 + (window - 1) / 2
    return x, means


def _envelope(values: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min and max of each run of batches: what the raw line would show at this width."""
    edges = np.linspace(0, len(values), buckets + 1).astype(int)
    lo = np.minimum.reduceat(values, edges[:-1])
    hi = np.maximum.reduceat(values, edges[:-1])
    x = (edges[:-1] + edges[1:] - 1) / 2 + 1
    return x, lo, hi


def _batch_series(ax, values: np.ndarray, key: str, window: int, starts: np.ndarray) -> None:
    """One per-batch series: raw values (or their range), their running mean, epoch boundaries."""
    n = len(values)
    x = np.arange(1, n + 1)
    if n > 800:  # thousands of zig-zags would fill the SVG and hide the trend
        bx, lo, hi = _envelope(values, 400)
        ax.fill_between(bx, lo, hi, color=BLUE, alpha=0.18, lw=0, label="range of the raw values")
    elif n > 1:
        ax.plot(x, values, color=BLUE, alpha=0.35, lw=0.7, label="each batch", gid=f"batch-{key}")
    else:
        ax.plot(x, values, "o", color=BLUE, label="the only batch", gid=f"batch-{key}")
    if n >= 3 * window:
        mx, mean = _moving_average(values, window)
        every = max(1, len(mean) // 600)  # ~600 points draw the line as well as 12,000
        ax.plot(mx[::every], mean[::every], color=BLUE, lw=1.4, label=f"mean of {window} batches")
    for s in starts[1:]:
        ax.axvline(s + 0.5, color=GREY, lw=0.6, ls=":")


def _accuracy_axis(ax, accuracy: np.ndarray) -> None:
    n = len(accuracy)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    # Start the axis near the lowest 1% of batches: the first few batches of a run
    # would otherwise squash the long plateau near 100% into a flat line.
    floor = math.floor(float(np.nanpercentile(accuracy, 1)) * 10) / 10
    if n > 100 and floor > np.nanmin(accuracy):
        ax.set_ylim(floor, 1.005)
        ax.set_ylabel(f"batch accuracy (from {floor:.0%})")
    else:
        low = float(np.nanmin(accuracy)) if n > 1 else 0.0
        ax.set_ylim(min(low, 0.9) - 0.02, 1.005)  # a lone batch or a flat run: show 0-100%
    ax.set_xlim(0.5, n + 0.5)
    if n <= 10:
        ax.set_xticks(np.arange(1, n + 1))
    else:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))


def _epoch_numbers(ax, epochs: np.ndarray, starts: np.ndarray) -> None:
    """The epoch numbers along the top, at the middle of each epoch's batches."""
    top = ax.secondary_xaxis("top")
    ends = np.r_[starts[1:], len(epochs)]
    step = max(1, math.ceil(len(starts) / 20))
    mids = (starts + 1 + ends) / 2
    top.set_xticks(mids[::step], [str(int(epochs[s])) for s in starts[::step]])
    top.tick_params(length=0)
    top.set_xlabel("epoch")


@styled
def training_batches(history: History) -> Figure:
    if not history.batches:
        return message(
            "training_batches",
            "No training in this run: the model was loaded, not trained.",
            "Per-batch training loss and accuracy: none, because this run trained nothing.",
        )
    loss, accuracy, epochs = history.batch_loss, history.batch_accuracy, history.batch_epoch
    n = history.batches
    starts = np.flatnonzero(np.r_[True, epochs[1:] != epochs[:-1]])  # first batch of each epoch
    window = max(5, n // 60)
    fig = new(4.0)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    _batch_series(ax_loss, loss, "loss", window, starts)
    _batch_series(ax_acc, accuracy, "accuracy", window, starts)
    ax_loss.set_ylabel("loss (cross-entropy)")
    positive = loss[np.isfinite(loss) & (loss > 0)]
    if positive.size and positive.max() / positive.min() > 30:
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("loss (cross-entropy, log scale)")
    ax_acc.set_ylabel("batch accuracy")
    _accuracy_axis(ax_acc, accuracy)
    boundaries = " (dotted lines: epoch boundaries)" if len(starts) > 1 else ""
    ax_acc.set_xlabel(f"batch, counted across epochs{boundaries}")
    if n > 1:  # a lone point needs no key; the caption says what it is
        ax_loss.legend(loc="lower left" if n > 800 else "best", ncols=2)
    _epoch_numbers(ax_loss, epochs, starts)
    if n > 800:
        how = f"; shading: the range of the raw values, line: mean of {window} batches"
    elif n >= 3 * window:
        how = f"; thin line: each batch, thick line: mean of {window} batches"
    else:
        how = ""
    first, last = float(np.mean(loss[:window])), float(np.mean(loss[-window:]))
    trend = f"; the loss went from about {first:.3g} to {last:.3g}" if n >= 2 * window else ""
    return finish(
        fig,
        "training_batches",
        f"Loss and accuracy of "
        f"{'the only training batch' if n == 1 else f'each of the {n:,} training batches'}"
        f" as training went{how}{trend}.",
        "Two line charts of per-batch training loss and accuracy against batch number.",
    )


@styled
def training_epochs(history: History) -> Figure:
    records = history.epochs
    if not records:
        return message(
            "training_epochs",
            "No training in this run: the model was loaded, not trained.",
            "Per-epoch accuracy, loss and time: none, because this run trained nothing.",
        )
    e = np.array([r.epoch for r in records])

    def get(key: str) -> np.ndarray:  # NaN (null in JSON) becomes a gap in the line
        return np.array([getattr(r, key) for r in records], np.float64)

    fig = new(2.7)
    ax_acc, ax_loss, ax_time = fig.subplots(1, 3)
    for ax, key, label in ((ax_acc, "accuracy", "accuracy"), (ax_loss, "loss", "loss (cross-entropy)")):
        # gid: each series is a <g id> in the SVG, findable by tests and scripts
        ax.plot(e, get(f"train_{key}"), "o-", color=BLUE, label="train (mean over the epoch)", gid=f"train-{key}")
        ax.plot(e, get(f"test_{key}"), "s-", color=VERMILION, label="test (end of the epoch)", gid=f"test-{key}")
        ax.set_ylabel(label)
    ax_acc.axhline(notebook.ACCURACY, color=GREY, lw=0.8, ls="--")
    # Right end, under the line: the curves rise from the left and sit above it there.
    ax_acc.annotate(
        f"seed {notebook.ACCURACY:.2%}",
        (1, notebook.ACCURACY),
        xycoords=("axes fraction", "data"),
        xytext=(-2, -3),
        textcoords="offset points",
        fontsize=8,
        color=DARK,
        ha="right",
        va="top",
        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
    )
    ax_acc.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=1))
    ax_time.bar(e, get("seconds"), 0.6, color=BLUE, label="seconds training")
    ax_time.bar(
        e,
        get("eval_seconds"),
        0.6,
        bottom=get("seconds"),
        color=VERMILION,
        alpha=0.6,
        hatch=HATCH,
        edgecolor="white",
        linewidth=0,
        label="seconds testing",
    )
    ax_time.set_ylabel("seconds")
    for ax in (ax_acc, ax_loss, ax_time):
        ax.set_xlabel("epoch")
        if len(e) <= 10:
            ax.set_xticks(e)
        else:
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=6))
        ax.set_xlim(e.min() - 0.6, e.max() + 0.6)
    handles, labels = ax_acc.get_legend_handles_labels()
    more, names = ax_time.get_legend_handles_labels()
    fig.legend(handles + more, labels + names, loc="outside upper center", ncols=4, columnspacing=1.2, handlelength=1.6)
    last = records[-1]
    seconds = get("seconds")
    return finish(
        fig,
        "training_epochs",
        f"Accuracy and loss after each epoch, on the training batches and on the test set, "
        f"and the seconds each epoch took; after epoch {last.epoch} the test accuracy "
        f"is {share(last.test_accuracy)} (seed: {notebook.ACCURACY:.2%}), "
        f"at {np.nanmean(seconds):.1f} s per epoch.",
        "Three panels: accuracy, loss and seconds per epoch, train and test.",
    )
