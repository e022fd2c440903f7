"""Section 5, Evaluation: the confusion heat map and the reliability diagram."""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker

from reportgen.evaluate import Calibration
from reportgen.figures._style import (
    BLUE,
    DARK,
    GREY,
    PAD_PLAIN,
    SEQUENTIAL,
    VERMILION,
    Figure,
    _bare,
    _cmap,
    _finish,
    _imshow,
    _luminance,
    _message,
    _new,
    _share,
    _styled,
)

# -- evaluation -------------------------------------------------------------------------


@_styled
def confusion(matrix: np.ndarray) -> Figure:
    table = np.asarray(matrix, dtype=np.int64)  # rows predictions, columns the reference
    k = table.shape[0]
    fig = _new(5.6)
    ax = fig.add_subplot()
    # Log colour scale: the diagonal holds ~1000 per cell, the errors 1-10; on a linear
    # scale every error would look like an empty cell. Zero cells are masked (white).
    norm = mcolors.LogNorm(vmin=1, vmax=max(2, int(table.max())))
    cmap = _cmap(SEQUENTIAL, PAD_PLAIN)
    image = _imshow(ax, np.where(table > 0, table, np.nan), cmap=cmap, norm=norm)
    for r in range(k):
        for c in range(k):
            value = int(table[r, c])
            if value == 0:
                colour = "#B0B0B0"
            else:
                colour = "black" if _luminance(cmap(norm(value))) > 0.35 else "white"
            # gid: the cell's <g id> in the SVG, so a test (or a script) can find it
            ax.text(c, r, f"{value}", ha="center", va="center", fontsize=8, color=colour, gid=f"cell-{r}-{c}")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("reference (the true label)")
    ax.set_ylabel("prediction")
    _bare(ax)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("test images (log scale)")
    errors = table.copy()
    np.fill_diagonal(errors, 0)
    p, r = (int(i) for i in np.unravel_index(int(np.argmax(errors)), errors.shape))
    n = int(table.sum())
    accuracy = np.trace(table) / n if n else float("nan")
    ax.set_title(f"{n:,} test images, {_share(accuracy)} on the diagonal", loc="center", pad=4, y=-0.06, va="top")
    worst = (
        f"the largest error is {errors[p, r]} images of {r} predicted as {p}" if errors[p, r] else "there are no errors"
    )
    return _finish(
        fig,
        "confusion",
        f"Counts of test images by prediction (rows) and true label (columns), as the "
        f"seed's table; colour on a log scale so single errors show; {worst}.",
        f"Confusion matrix heat map, {k} by {k}, accuracy {_share(accuracy)}.",
    )


def _bin_counts(ax, lower: np.ndarray, width: np.ndarray, count: np.ndarray) -> None:
    """The reliability diagram's second panel: how many predictions each bin holds."""
    ax.bar(lower, count, width, align="edge", color=DARK, alpha=0.75, ec="white", lw=0.6)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_ylim(0.7, count.max() * 40)  # room above the tallest bar for its label
    ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("test images in the bin (log scale)")
    ax.set_title("How many predictions fall in each bin")
    for x0, w, c in zip(lower, width, count):
        ax.text(x0 + w / 2, c * 1.15, f"{c:,}", ha="center", va="bottom", fontsize=8, rotation=90)


@_styled
def reliability(calibration: Calibration) -> Figure:
    bins = [b for b in calibration.bins if b.count and b.accuracy is not None and b.confidence is not None]
    ece = calibration.ece
    ece_text = "n/a" if not math.isfinite(ece) else f"{ece:.2%}"
    if not bins:
        return _message(
            "reliability",
            "No test images to calibrate against.",
            "Reliability diagram: empty, no test image was scored.",
        )
    lower = np.array([b.lower for b in bins])
    width = np.array([b.upper - b.lower for b in bins])
    acc = np.array([b.accuracy for b in bins], dtype=np.float64)
    conf = np.array([b.confidence for b in bins], dtype=np.float64)
    count = np.array([b.count for b in bins])
    fig = _new(3.5)
    ax, ax_n = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    ax.bar(lower, acc, width, align="edge", color=BLUE, alpha=0.3, ec=BLUE, lw=0.6, label="accuracy in the bin")
    ax.bar(
        lower,
        conf - acc,
        width,
        bottom=acc,
        align="edge",
        color=VERMILION,
        alpha=0.45,
        lw=0,
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=0.8, label="perfect calibration")
    ax.plot(conf, acc, "o", color=BLUE, ms=3.5, label="(mean confidence, accuracy)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_aspect("equal", adjustable="box")
    ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability: ECE = {ece_text}")
    _bin_counts(ax_n, lower, width, count)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, handlelength=1.4, columnspacing=1.0)
    top = bins[-1]
    return _finish(
        fig,
        "reliability",
        f"Predictions grouped by confidence: a well-calibrated network's bars touch the "
        f"diagonal; expected calibration error (ECE, the count-weighted mean gap) "
        f"{ece_text}; {top.count:,} predictions fall in the top bin, "
        f"{_share(top.accuracy)} of them right.",
        f"Reliability diagram with expected calibration error {ece_text}, and bin counts.",
    )
