"""Section 5, Evaluation: the confusion heat map, the reliability diagram, and the ROC and
precision-recall curves."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker

from reportgen.report.figures.style import (
    BLUE,
    DARK,
    DIGIT_MARKERS,
    GREY,
    HATCH,
    PAD_PLAIN,
    SEQUENTIAL,
    VERMILION,
    Figure,
    colormap,
    confusion_axes,
    finish,
    imshow,
    luminance,
    message,
    new,
    share,
    styled,
)
from reportgen.stats.calibration import Calibration
from reportgen.stats.ranking import RankingMetrics

# -- evaluation -------------------------------------------------------------------------


@styled
def confusion(matrix: np.ndarray) -> Figure:
    table = np.asarray(matrix, dtype=np.int64)  # rows predictions, columns the reference
    k = table.shape[0]
    fig = new(5.6)
    ax = fig.add_subplot()
    # Log colour scale: the diagonal holds ~1000 per cell, the errors 1-10; on a linear
    # scale every error would look like an empty cell. Zero cells are masked (white).
    norm = mcolors.LogNorm(vmin=1, vmax=max(2, int(table.max())))
    cmap = colormap(SEQUENTIAL, PAD_PLAIN)
    image = imshow(ax, np.where(table > 0, table, np.nan), cmap=cmap, norm=norm)
    for r in range(k):
        for c in range(k):
            value = int(table[r, c])
            if value == 0:
                colour = "#B0B0B0"
            else:
                colour = "black" if luminance(cmap(norm(value))) > 0.35 else "white"
            # gid: the cell's <g id> in the SVG, so a test (or a script) can find it
            ax.text(c, r, f"{value}", ha="center", va="center", fontsize=8, color=colour, gid=f"cell-{r}-{c}")
    confusion_axes(ax, k)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("test images (log scale)")
    errors = table.copy()
    np.fill_diagonal(errors, 0)
    p, r = (int(i) for i in np.unravel_index(int(np.argmax(errors)), errors.shape))
    n = int(table.sum())
    accuracy = np.trace(table) / n if n else float("nan")
    ax.set_title(f"{n:,} test images, {share(accuracy)} on the diagonal", loc="center", pad=4, y=-0.06, va="top")
    worst = (
        f"the largest error is {errors[p, r]} images of {r} predicted as {p}" if errors[p, r] else "there are no errors"
    )
    return finish(
        fig,
        "confusion",
        f"Counts of test images by prediction (rows) and true label (columns), as the "
        f"seed's table; colour on a log scale so single errors show; {worst}.",
        f"Confusion matrix heat map, {k} by {k}, accuracy {share(accuracy)}.",
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
        # gid: each count's <g id> in the SVG, findable by tests and scripts
        ax.text(
            x0 + w / 2, c * 1.15, f"{c:,}", ha="center", va="bottom", fontsize=8, rotation=90, gid=f"count-{x0:.1f}"
        )


@styled
def reliability(calibration: Calibration) -> Figure:
    bins = [b for b in calibration.bins if b.count and b.accuracy is not None and b.confidence is not None]
    ece = calibration.ece
    ece_text = "n/a" if not math.isfinite(ece) else f"{ece:.2%}"
    if not bins:
        return message(
            "reliability",
            "No test images to calibrate against.",
            "Reliability diagram: empty, no test image was scored.",
        )
    lower = np.array([b.lower for b in bins])
    width = np.array([b.upper - b.lower for b in bins])
    acc = np.array([b.accuracy for b in bins], dtype=np.float64)
    conf = np.array([b.confidence for b in bins], dtype=np.float64)
    count = np.array([b.count for b in bins])
    fig = new(3.5)
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
        hatch=HATCH,
        edgecolor="white",
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
    return finish(
        fig,
        "reliability",
        f"Predictions grouped by confidence: a well-calibrated network's bars touch the "
        f"diagonal; expected calibration error (ECE, the count-weighted mean gap) "
        f"{ece_text}; {top.count:,} predictions fall in the top bin, "
        f"{share(top.accuracy)} of them right.",
        f"Reliability diagram with expected calibration error {ece_text}, and bin counts.",
    )


# -- ranking: ROC and precision-recall ---------------------------------------------------


def _digit_colours(k: int) -> list:
    # Ten digits in order along viridis, the house's map for magnitudes; the micro average in black.
    return [matplotlib.colormaps[SEQUENTIAL](i / max(k - 1, 1) * 0.9) for i in range(k)]


def _floor(value: float, step: float) -> float:
    return math.floor(value / step) * step


def _roc_panel(ax, ranking: RankingMetrics, colours: list) -> None:
    """FPR on a log axis: an AUC of 0.999 lives in the first thousandth of the false positives."""
    positive = [v for c in ranking.roc_curves for v in c.get("fpr", []) if v > 0]
    left = 10.0 ** math.floor(math.log10(min(positive))) if positive else 1e-4
    lowest = 1.0
    for c, (curve, colour) in enumerate(zip(ranking.roc_curves, colours)):
        if not curve.get("fpr"):
            continue
        fpr = np.maximum(np.asarray(curve["fpr"]), left)  # FPR 0 drawn at the left edge
        tpr = np.asarray(curve["tpr"])
        lowest = min(lowest, float(np.interp(10 * left, fpr, tpr)))
        ax.plot(
            fpr,
            tpr,
            color=colour,
            lw=0.9,
            marker=DIGIT_MARKERS[c % 10],
            markevery=0.12,
            ms=3.5,
            label=f"{c}  {ranking.roc_auc[c]:.4f}",
        )
    micro = ranking.roc_curve_micro
    if micro.get("fpr"):
        ax.plot(np.maximum(micro["fpr"], left), micro["tpr"], color="black", lw=1.3, ls="--", label="micro")
    ax.set_xscale("log")
    ax.set_xlim(left, 1)
    ax.set_ylim(max(0.0, _floor(lowest - 0.005, 0.01)), 1.002)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("false positive rate (log scale; 0 drawn at the left edge)")
    ax.set_ylabel("true positive rate (zoomed)")
    ax.set_title(f"ROC curves\nAUC macro {ranking.roc_auc_macro:.4f}, micro {ranking.roc_auc_micro:.4f}")
    ax.grid(True, which="major", color="#E4E7EB", lw=0.5)


def _pr_panel(ax, ranking: RankingMetrics, colours: list) -> None:
    """Recall and precision both zoomed to where the curves turn, near the top right: down to
    the precision the worst digit still has at 99% recall (each curve then falls to its
    digit's share of the images at recall 1, off the axes)."""
    lowest = 1.0
    for c, (curve, colour) in enumerate(zip(ranking.pr_curves, colours)):
        if not curve.get("recall"):
            continue
        recall, precision = np.asarray(curve["recall"]), np.asarray(curve["precision"])
        lowest = min(lowest, float(precision[recall >= 0.99].max(initial=0.0)))
        ax.plot(recall, precision, color=colour, lw=0.9, marker=DIGIT_MARKERS[c % 10], markevery=0.12, ms=3.5)
    micro = ranking.pr_curve_micro
    if micro.get("recall"):
        ax.plot(micro["recall"], micro["precision"], color="black", lw=1.3, ls="--", label="micro")
    low = max(0.0, min(0.95, _floor(lowest - 0.01, 0.01)))
    ax.set_xlim(low, 1.002)
    ax.set_ylim(low, 1.002)
    ax.set_aspect("equal", adjustable="box")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("recall (zoomed)")
    ax.set_ylabel("precision (zoomed)")
    ax.set_title(
        f"Precision-recall curves\n"
        f"AP macro {ranking.average_precision_macro:.4f}, micro {ranking.average_precision_micro:.4f}"
    )
    ax.grid(True, which="major", color="#E4E7EB", lw=0.5)


@styled
def ranking(ranking: RankingMetrics | None) -> Figure:
    if ranking is None:
        return message(
            "ranking",
            "Not recorded: this run kept no predictions.npz to draw the curves from.",
            "ROC and precision-recall curves: none, this run was made before reportgen kept its predictions.",
        )
    colours = _digit_colours(len(ranking.roc_curves))
    fig = new(4.1)
    ax_roc, ax_pr = fig.subplots(1, 2)
    _roc_panel(ax_roc, ranking, colours)
    _pr_panel(ax_pr, ranking, colours)
    handles, labels = ax_roc.get_legend_handles_labels()
    fig.legend(
        handles,
        [label if label != "micro" else "pooled (micro)" for label in labels],
        loc="outside lower center",
        ncols=6,
        handlelength=1.5,
        columnspacing=0.9,
        title="digit against the rest, and its ROC AUC",
        title_fontsize=8,
    )
    return finish(
        fig,
        "ranking",
        f"Each digit's probability as a score for that digit against the other nine: ROC curves (left) and "
        f"precision-recall curves (right, AP: average precision), both zoomed to the corner where they turn; "
        f"dashed: all digits pooled (micro average). The AUC this report quotes is the macro average, "
        f"the unweighted mean over the ten digits ({ranking.roc_auc_macro:.4f}); the micro average is "
        f"{ranking.roc_auc_micro:.4f}.",
        f"ROC and precision-recall curves of the ten digits, ROC AUC macro {ranking.roc_auc_macro:.4f}.",
    )
