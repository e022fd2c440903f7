"""Section "Against the baseline": per-class changes, the confusion matrices' difference, the
images fixed and broken, and both runs' training curves on the same axes."""

from __future__ import annotations

import math

import numpy as np
from matplotlib import ticker
from matplotlib.lines import Line2D

from reportgen.data import Dataset
from reportgen.report.figures.style import (
    BLUE,
    DARK,
    DIVERGING,
    PAD_PLAIN,
    VERMILION,
    Figure,
    colormap,
    confusion_axes,
    finish,
    imshow,
    luminance,
    message,
    new,
    styled,
    symmetric,
    test_images,
    titled_gallery,
)
from reportgen.report.filters import article
from reportgen.run.comparison import SHOWN, Change, Comparison
from reportgen.run.history import History

BASELINE = "#6B6B6B"  # the baseline's lines: a dark grey beside this run's blue

# -- per-class changes --------------------------------------------------------------------


@styled
def baseline_classes(comparison: Comparison) -> Figure:
    """Three panels of horizontal bars, one bar per digit: this run minus the baseline."""
    keys = (("sensitivity", "sensitivity (recall)"), ("precision", "precision"), ("f1", "F1"))
    rows = comparison.by_class
    digits = [row.digit for row in rows]
    deltas = {key: 100 * np.array([getattr(row, key) for row in rows], dtype=np.float64) for key, _ in keys}
    every = np.concatenate(list(deltas.values()))
    finite = every[np.isfinite(every)]
    limit = max(float(np.abs(finite).max()) if finite.size else 0.0, 0.05) * 1.35  # room for the labels
    fig = new(3.3)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (key, label) in zip(axes, keys):
        values = deltas[key]
        shown = np.nan_to_num(values)
        ax.barh(digits, shown, 0.7, color=[BLUE if v >= 0 else VERMILION for v in shown])
        ax.axvline(0, color=DARK, lw=0.6)
        for d, v in zip(digits, values):
            text = "NA" if not math.isfinite(v) else f"{v:+.2f}".replace("-", "\u2212")
            ax.text(
                v if math.isfinite(v) else 0,
                d,
                f" {text} " if math.isfinite(v) else " NA",
                va="center",
                ha="left" if not math.isfinite(v) or v >= 0 else "right",
                fontsize=7,
                color=DARK,
            )
        ax.set_xlim(-limit, limit)
        ax.set_title(label, loc="center")
        ax.set_xlabel("change, percentage points")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(5, symmetric=True))
    axes[0].set_yticks(digits)
    axes[0].set_ylabel("digit")
    axes[0].invert_yaxis()
    worst = min(rows, key=lambda row: row.f1 if math.isfinite(row.f1) else math.inf)
    said = (
        f"the largest F1 drop is digit {worst.digit}'s, {100 * worst.f1:+.2f} points".replace("-", "\u2212")
        if math.isfinite(worst.f1) and worst.f1 < 0
        else "no digit's F1 dropped"
    )
    return finish(
        fig,
        "baseline_classes",
        f"Per digit, this run's sensitivity, precision and F1 minus the baseline's, in percentage points "
        f"(blue: better, orange: worse); {said}.",
        "Three bar charts of per-digit changes in sensitivity, precision and F1 against the baseline.",
    )


# -- the confusion matrices' difference ----------------------------------------------------


@styled
def baseline_confusion(comparison: Comparison) -> Figure:
    diff = np.asarray(comparison.confusion_difference, dtype=np.int64)  # rows predictions, columns labels
    k = len(diff)
    # Coloured by what the change means: more images on the diagonal is better, more off it
    # worse. So the colour is "worse by" (red) or "better by" (blue), the text the raw change.
    worse = np.where(np.eye(k, dtype=bool), -diff, diff).astype(np.float64)
    norm = symmetric(worse)
    cmap = colormap(DIVERGING, PAD_PLAIN)
    fig = new(5.4)
    ax = fig.add_subplot()
    image = imshow(ax, np.where(diff != 0, worse, np.nan), cmap=cmap, norm=norm)
    for r in range(k):
        for c in range(k):
            value = int(diff[r, c])
            colour = "#B0B0B0" if value == 0 else ("black" if luminance(cmap(norm(worse[r, c]))) > 0.35 else "white")
            text = "0" if value == 0 else f"{value:+d}".replace("-", "\u2212")
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=colour, gid=f"diff-{r}-{c}")
    confusion_axes(ax, k)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("images: worse (red) or better (blue) than the baseline")
    counts = comparison.counts
    ax.set_title(
        f"This run's table minus the baseline's: {counts.fixed} fixed, {counts.broken} broken",
        loc="center",
        pad=4,
        y=-0.06,
        va="top",
    )
    return finish(
        fig,
        "baseline_confusion",
        "The confusion matrix of this run minus the baseline's (rows predictions, columns true labels): a "
        "positive number on the diagonal is more images right, off the diagonal more images of that mistake; "
        "red cells are where this run does worse, blue where it does better.",
        f"Heat map of the difference of two {k} by {k} confusion matrices.",
    )


# -- the images fixed and broken -------------------------------------------------------------


def _changed(dataset: Dataset, changes: tuple[Change, ...], name: str, verb: str, total: int) -> Figure:
    if not changes:
        return message(
            name,
            f"This run {verb} no test image.",
            f"Test images this run {verb}: none.",
        )
    shown = changes[:SHOWN]
    images = test_images(dataset, [c.index for c in shown], f"the images this run {verb}")
    lines = [[f"#{c.index}", f"label {c.label}", f"{c.baseline_prediction} → {c.prediction}"] for c in shown]
    title = (
        f"{len(shown)} of the {total} test images this run {verb}, in test-set order: "
        "index, label, then baseline → this run"
    )
    fig = titled_gallery(images, lines, title, row_height=1.18)
    first = shown[0]
    return finish(
        fig,
        name,
        f"Test images the baseline got {'wrong and this run right' if verb == 'fixed' else 'right and this run wrong'} "
        f"({len(shown)} of {total}); above each its index, its label and both predictions, the baseline's first: "
        f"e.g. #{first.index}, {article(first.label)} {first.label}, read as {first.baseline_prediction} by the "
        f"baseline and {first.prediction} by this run.",
        f"{len(shown)} handwritten digits this run {verb}, with both runs' predictions.",
    )


@styled
def baseline_fixed(dataset: Dataset, comparison: Comparison) -> Figure:
    return _changed(dataset, comparison.fixed, "baseline_fixed", "fixed", comparison.counts.fixed)


@styled
def baseline_broken(dataset: Dataset, comparison: Comparison) -> Figure:
    return _changed(dataset, comparison.broken, "baseline_broken", "broke", comparison.counts.broken)


# -- both runs' training -------------------------------------------------------------------


def _epoch_lines(ax, history: History, key: str, colour: str, who: str) -> None:
    # The baseline's markers are hollow: its grey and this run's blue have the same lightness.
    face = "white" if who == "baseline" else colour
    epochs = np.array([r.epoch for r in history.epochs])
    for split, style, marker in (("test", "-", "o"), ("train", "--", "^")):
        values = np.array([getattr(r, f"{split}_{key}") for r in history.epochs], np.float64)
        ax.plot(
            epochs, values, ls=style, marker=marker, ms=3.5, mfc=face, color=colour, lw=1.2, gid=f"{who}-{split}-{key}"
        )


@styled
def baseline_training(history: History, baseline_history: History | None) -> Figure:
    runs = ((baseline_history, BASELINE, "baseline"), (history, BLUE, "run"))
    drawn = [(h, colour, who) for h, colour, who in runs if h is not None and h.epochs]
    if not drawn:
        return message(
            "baseline_training",
            "Neither run recorded its training epochs.",
            "Training curves of both runs: none recorded.",
        )
    fig = new(2.9)
    ax_acc, ax_loss = fig.subplots(1, 2)
    for h, colour, who in drawn:
        assert h is not None
        _epoch_lines(ax_acc, h, "accuracy", colour, who)
        _epoch_lines(ax_loss, h, "loss", colour, who)
    ax_acc.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=1))
    ax_acc.set_ylabel("accuracy")
    ax_loss.set_ylabel("loss (cross-entropy)")
    last = max(int(h.epochs[-1].epoch) for h, _, _ in drawn if h is not None)
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("epoch")
        if last <= 10:
            ax.set_xticks(range(1, last + 1))
        else:
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=8))
        ax.set_xlim(0.5, last + 0.5)
    keys = [
        Line2D([], [], color=BLUE, marker="o", ms=3, label="this run, test"),
        Line2D([], [], color=BLUE, ls="--", marker="^", ms=3.5, label="this run, train"),
        Line2D([], [], color=BASELINE, marker="o", ms=3, mfc="white", label="baseline, test"),
        Line2D([], [], color=BASELINE, ls="--", marker="^", ms=3.5, mfc="white", label="baseline, train"),
    ]
    fig.legend(handles=keys, loc="outside upper center", ncols=4, handlelength=2.0, columnspacing=1.2)
    missing = [who for h, _, who in runs if h is None or not h.epochs]
    note = (
        f"; the {'baseline' if missing == ['baseline'] else 'this run'} recorded no training epochs" if missing else ""
    )
    return finish(
        fig,
        "baseline_training",
        f"Accuracy and loss after each epoch, this run in blue (filled markers) and the baseline in grey "
        f"(hollow markers): solid lines on the "
        f"test set, dashed the mean over the epoch's training batches{note}.",
        "Two line charts of per-epoch accuracy and loss, this run and the baseline on the same axes.",
    )
