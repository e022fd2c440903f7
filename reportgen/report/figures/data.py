"""Section 2, Data: the first digits and the class counts."""

from __future__ import annotations

import numpy as np
from matplotlib import ticker

from reportgen.data import Dataset
from reportgen.report.figures.style import BLUE, DARK, HATCH, VERMILION, WIDTH, Figure, finish, gallery, new, styled

# -- data -------------------------------------------------------------------------------


@styled
def first_digits(dataset: Dataset, count: int = 10) -> Figure:
    images = dataset.train_x[:count]
    labels = [int(y) for y in dataset.train_y[:count]]
    fig = new(1.25, layout=None)
    fig.text(
        0.1 / WIDTH,
        1 - 0.06 / 1.25,
        f"The first {len(images)} training images, each under its label",
        ha="left",
        va="top",
        fontsize=9,
    )
    gallery(
        fig,
        images,
        count,
        [[str(y)] for y in labels],
        left=0.1,
        top=0.28,
        width=WIDTH - 0.2,
        gap=0.08,
        line_height=0.19,
        fontsize=10,
    )
    shown = ", ".join(map(str, labels))
    return finish(
        fig,
        "first_digits",
        f"The first {len(images)} training digits as stored, dark ink on white, each "
        f"under its label ({shown}); the seed showed the first five, 5, 0, 4, 1, 9.",
        f"The first {len(images)} training digits, labelled {shown}.",
    )


@styled
def class_counts(dataset: Dataset) -> Figure:
    train = np.bincount(dataset.train_y, minlength=10)[:10]
    test = np.bincount(dataset.test_y, minlength=10)[:10]
    fig = new(2.6)
    ax = fig.add_subplot()
    x = np.arange(10)
    width = 0.4
    # Shares, not counts, on the axis: the splits differ six-fold in size, and the
    # question is whether they hold the digits in the same proportions.
    for offset, counts, colour, hatch, label in (
        (-width / 2, train, BLUE, None, "train"),
        (width / 2, test, VERMILION, HATCH, "test"),
    ):
        total = max(int(counts.sum()), 1)
        bars = ax.bar(
            x + offset,
            counts / total,
            width,
            color=colour,
            hatch=hatch,
            edgecolor="white",
            linewidth=0,
            label=f"{label} ({int(counts.sum()):,} images)",
        )
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], rotation=90, padding=2, fontsize=8, color=DARK)
    top = max((train / max(train.sum(), 1)).max(), (test / max(test.sum(), 1)).max())
    ax.set_ylim(0, top * 1.4)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xticks(x)
    ax.set_xlabel("digit")
    ax.set_ylabel("share of the split")
    ax.set_title("Images per digit (bar labels: counts)")
    ax.legend(loc="upper left", ncols=2)
    rare, common = int(np.argmin(train)), int(np.argmax(train))
    return finish(
        fig,
        "class_counts",
        f"How many images of each digit the training and test sets hold (bar height: share "
        f"of the split; label: count); the training set has the fewest {rare}s "
        f"({train[rare]:,}) and the most {common}s ({train[common]:,}).",
        "Grouped bar chart of images per digit 0 to 9, training and test sets.",
    )
