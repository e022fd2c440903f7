"""Section "Why the network got it wrong", the feature space: every test image on act3's first
two principal components, and each confident mistake beside its nearest training images.

Drawn from features.npz (run.explanation), the evaluation and the test images: no MXNet, and
no training set (features.npz keeps the neighbours' pixels). Ten classes are told apart by
marker and by the digit written at each class's centre as well as by colour.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from reportgen.data import Dataset
from reportgen.errors import RenderError
from reportgen.report.figures.style import (
    VERMILION,
    WIDTH,
    Figure,
    finish,
    gallery,
    message,
    new,
    styled,
    test_images,
)
from reportgen.run.explanation import SIDE, Features
from reportgen.stats.mistakes import Mistake

# Ten classes, told apart without colour too: each its own marker, and the digit written at the
# middle of its points. Paul Tol's "muted" scheme (nine colours chosen to stay apart with the
# common colour-vision deficiencies) and a dark grey for the tenth.
CLASS_COLOURS = (
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
    "#555555",
)
CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p")
SLICES = 8  # each class drawn in this many interleaved slices: no class lies wholly on top


# -- the feature space --------------------------------------------------------------------------


def _name(ax, points: np.ndarray, named: list[tuple[int, str]]) -> None:
    """Each named test image's number in a column to the right of the cloud, joined to its point
    by a thin line, top to bottom in the points' order: numbers written beside their points
    overlapped wherever the worst pair's images lie close together."""
    if not named:
        return
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.maximum(high - low, 1e-9)
    column = high[0] + 0.06 * span[0]
    # Room for the column, as data the view must hold rather than fixed limits: the equal aspect
    # (adjustable="datalim") may have to widen x, and it would then drop fixed ones with a warning.
    ax.update_datalim([(low[0] - 0.03 * span[0], low[1]), (high[0] + 0.22 * span[0], high[1])])
    ax.set_xmargin(0)  # those bounds already leave the room
    order = sorted(named, key=lambda item: (-points[item[0], 1], item[0]))
    heights = np.linspace(high[1], low[1], len(order) + 2)[1:-1] if len(order) > 1 else [points[order[0][0], 1]]
    halo = [patheffects.withStroke(linewidth=2.0, foreground="white")]
    for (index, text), y in zip(order, heights):
        x0, y0 = points[index]
        ax.plot([x0, column], [y0, y], lw=0.5, color="black", zorder=5, solid_capstyle="butt")
        ax.text(column, y, f" {text}", fontsize=7, va="center", ha="left", zorder=6, path_effects=halo)


def _mark(ax, points: np.ndarray, marker: str, size: float) -> None:
    ax.scatter(
        points[:, 0],
        points[:, 1],
        s=size,
        marker=marker,
        facecolors="none",
        edgecolors="black",
        linewidths=0.9,
        zorder=6,
    )


@styled
def projection(
    features: Features,
    labels: np.ndarray,
    predictions: np.ndarray | None,
    inspected: Sequence[int] = (),
    worst: Sequence[int] = (),
) -> Figure:
    """Every test image on act3's first two principal components: coloured and shaped by its
    label, the digit written at each class's median, mistakes ringed (predictions None: a run
    without predictions.npz, none ringed), the inspected digits and the worst pair's images named."""
    points = np.asarray(features.act3_pca, np.float64)
    labels = np.asarray(labels, np.int64)
    marked = predictions is not None
    predictions = np.asarray(predictions if marked else labels, np.int64)
    n = len(points)
    if len(labels) != n or len(predictions) != n:
        raise RenderError(
            f"features.npz: {n:,} test images projected, the evaluation has {len(labels):,} (files of different runs?)"
        )
    for index in (*inspected, *worst):
        if not 0 <= int(index) < n:
            raise RenderError(f"features.npz: test image {int(index)} is beyond the {n:,} projected")
    ratio = features.explained_variance_ratio
    fig = new(5.6)
    ax = fig.add_subplot()
    # One scatter per class and slice, the classes taking turns slice by slice: a class drawn
    # whole after the others would hide them wherever the clouds overlap.
    members = [np.flatnonzero(labels == digit) for digit in range(10)]
    for part in range(SLICES):
        for digit in range(10):
            chosen = members[digit][part::SLICES]
            ax.scatter(
                points[chosen, 0],
                points[chosen, 1],
                s=3,
                marker=CLASS_MARKERS[digit],
                c=CLASS_COLOURS[digit],
                linewidths=0,
                alpha=0.75,
                rasterized=True,
            )
    wrong = np.flatnonzero(predictions != labels)
    if len(wrong):
        ax.scatter(
            points[wrong, 0],
            points[wrong, 1],
            s=14,
            marker="o",
            facecolors="none",
            edgecolors="black",
            linewidths=0.5,
            zorder=4,
            rasterized=len(wrong) > 1000,
        )
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for digit in range(10):
        mine = points[labels == digit]
        if len(mine):
            x, y = np.median(mine, axis=0)
            ax.text(
                x,
                y,
                str(digit),
                fontsize=11,
                fontweight="bold",
                color="black",  # the class's light colours (sand, pale blue) would not read as text
                ha="center",
                va="center",
                zorder=7,
                path_effects=halo,
            )
    if len(worst):
        _mark(ax, points[np.asarray(worst, np.int64)], "D", 30)
    if len(inspected):
        _mark(ax, points[np.asarray(inspected, np.int64)], "*", 90)
    # Each image once, the inspected digits first (the seed's inspected digit is the worst pair's first).
    named = {int(i): f"#{int(i)} inspected" for i in inspected}
    named.update({int(i): f"#{int(i)}" for i in worst if int(i) not in named})
    _name(ax, points, list(named.items()))
    ax.set_aspect("equal", adjustable="datalim")  # a unit is as long across as up: distances keep their shape
    ax.set_xlabel(f"first principal component ({ratio[0]:.1%} of the variance)")
    ax.set_ylabel(f"second principal component ({ratio[1]:.1%} of the variance)")
    ax.set_title(f"act3's 500 features of the {n:,} test images, on their first two principal components")
    handles = [
        Line2D([], [], ls="", marker=CLASS_MARKERS[d], ms=5, mec="none", mfc=CLASS_COLOURS[d], label=f"label {d}")
        for d in range(10)
    ]
    if len(wrong):
        handles.append(Line2D([], [], ls="", marker="o", ms=5, mfc="none", mec="black", mew=0.6, label="mistake"))
    if len(worst):
        handles.append(
            Line2D([], [], ls="", marker="D", ms=5, mfc="none", mec="black", mew=0.9, label="worst pair, shown")
        )
    if len(inspected):
        handles.append(Line2D([], [], ls="", marker="*", ms=8, mfc="none", mec="black", mew=0.9, label="inspected"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, handletextpad=0.3)
    shown = ratio.sum()
    with matplotlib.rc_context({"savefig.dpi": 150}):  # the rasterized points, sharp enough in print
        return finish(
            fig,
            "explain_projection",
            f"Every test image's 500 act3 features (the layer before the scores) projected on their first two "
            f"principal components, which hold {shown:.1%} of the features' variance: colour, marker and the "
            f"digit at each class's median give the label; "
            + (
                f"black rings are the {len(wrong):,} mistakes. A mistake inside another class's cloud is a digit "
                "the network's features place among that class. "
                if marked
                else "the mistakes are not marked (the run has no predictions.npz). "
            )
            + f"Two directions cannot show the other {1 - shown:.0%}: classes that overlap here may lie apart in "
            "the 500 dimensions, and distances on the page are not distances in act3.",
            f"Scatter plot of {n:,} test images in two dimensions, clustered by digit, with the mistakes ringed.",
        )


# -- nearest training images --------------------------------------------------------------------


@styled
def neighbours(dataset: Dataset, features: Features, mistakes: Sequence[Mistake]) -> Figure:
    """Each confident mistake (in `mistakes`' order, those features.npz has neighbours for) beside
    its five nearest training images in act3 space, with their labels."""
    cases = [m for m in mistakes if m.index in set(features.neighbour_cases.tolist())]
    if not cases:
        return message(
            "explain_neighbours",
            "No confident mistake to find neighbours for.",
            "Nearest training images: none, the network made no mistake.",
        )
    rows = [features.row(m.index) for m in cases]
    near = features.neighbours[rows]
    k = near.shape[1]
    test = test_images(dataset, [m.index for m in cases], "features.npz")
    train = features.neighbour_images[rows].reshape(-1, SIDE, SIDE)  # features.npz keeps their pixels
    train_labels = features.neighbour_labels[rows]
    columns = 2 if len(cases) > 5 else 1
    per_column = -(-len(cases) // columns)
    left, column_gap, gap, apart, title_h = 0.1, 0.3, 0.05, 0.12, 0.32
    column_w = (WIDTH - 2 * left - (columns - 1) * column_gap) / columns
    tile_in = (column_w - apart - (k - 1) * gap) / (k + 1)
    row_h = tile_in + 2 * 0.13 + gap + 0.04
    height = title_h + per_column * row_h + 0.05
    fig = new(height, layout=None)
    fig.text(
        0.1 / WIDTH,
        1 - 0.06 / height,
        f"Each confident mistake (label → prediction) and its {k} nearest training images in act3 (their labels)",
        fontsize=9,
        va="top",
    )
    for c in range(columns):
        part = slice(c * per_column, min(len(cases), (c + 1) * per_column))
        if part.start >= part.stop:
            break
        x0 = left + c * (column_w + column_gap)
        mine = cases[part]
        ax, _, (_, top_px, pad_y, scale) = gallery(
            fig,
            test[part],
            1,
            [[f"#{m.index}", f"{m.label} → {m.prediction}"] for m in mine],
            left=x0,
            top=title_h,
            width=tile_in,
            gap=gap,
            line_height=0.13,
            fontsize=7,
        )
        for j in range(len(mine)):  # the mistake itself framed in the prediction's colour
            ax.add_patch(
                Rectangle(
                    (-0.5, top_px + j * (SIDE + pad_y) - 0.5),
                    SIDE,
                    SIDE,
                    fill=False,
                    lw=1.2,
                    ec=VERMILION,
                    clip_on=False,
                    zorder=3,
                )
            )
        lines = [
            [f"#{int(i)}", f"{int(label)}"] for i, label in zip(near[part].reshape(-1), train_labels[part].reshape(-1))
        ]
        gallery(
            fig,
            train.reshape(len(cases), k, SIDE, SIDE)[part].reshape(-1, SIDE, SIDE).astype(np.float64),
            k,
            lines,
            left=x0 + tile_in + apart,
            top=title_h,
            width=column_w - tile_in - apart,
            gap=gap,
            line_height=0.13,
            fontsize=7,
        )
    same = int((train_labels == np.array([m.prediction for m in cases])[:, None]).sum())
    return finish(
        fig,
        "explain_neighbours",
        f"The {len(cases)} most confident mistakes (framed), each beside its {k} nearest training images, "
        f"nearest first, with their training-set numbers and labels: {same} of the {len(cases) * k} neighbours "
        "carry the label the network predicted. Nearest in the network's features (act3's 500 values, Euclidean "
        f"distance, among the {features.train_images:,} training images the run loaded), not in pixels: they show "
        "which training digits the network treats as alike, not which look alike; and they are what one layer sees, "
        "not a cause of the mistake.",
        f"{len(cases)} misread digits, each followed by the {k} training digits closest to it in the network's "
        "features, with their labels.",
    )
