"""Section 6, The worst confusion: its digits with their probabilities, the most confident mistakes."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Patch

from reportgen.data import Dataset
from reportgen.report.figures.style import (
    BLUE,
    GREY,
    HATCH,
    VERMILION,
    WIDTH,
    Figure,
    class_colours,
    finish,
    gallery,
    hatch_vermilion,
    message,
    new,
    styled,
    test_images,
    titled_gallery,
)
from reportgen.report.filters import article
from reportgen.stats.mistakes import Mistake, WorstPair

# -- mistakes ---------------------------------------------------------------------------


@styled
def worst_cases(dataset: Dataset, pair: WorstPair, limit: int = 10) -> Figure:
    count = pair.count
    if count == 0 or not pair.indices or pair.reference is None or pair.prediction is None:
        return message(
            "worst_cases",
            "No test image was misclassified: there is no worst pair.",
            "The worst confusion: none, every test image was classified correctly.",
        )
    ref, pred = pair.reference, pair.prediction
    indices = list(pair.indices[:limit])
    probs = np.asarray(pair.probabilities[:limit], dtype=np.float64)
    images = test_images(dataset, indices, "metrics.json worst_pair")
    cols, n = 5, len(indices)
    rows = -(-n // cols)
    left, right, gap, bars_h, title_h, row_gap = 0.55, 0.1, 0.22, 0.72, 0.62, 0.42
    width = WIDTH - left - right
    tile_in = (width - (cols - 1) * gap) / cols
    row_h = tile_in + 0.17 + 0.06 + bars_h + row_gap
    height = title_h + rows * row_h
    fig = new(height, layout=None)
    _worst_header(fig, f"Labelled {ref}, predicted {pred}: {n} of the {count} test images", ref, pred, left, height)
    colours = class_colours(ref, pred)
    for r in range(rows):
        part = slice(r * cols, min(n, (r + 1) * cols))
        top = title_h + r * row_h
        # The gallery's x axis counts image elements from its left edge; the bars below
        # use the same units from the same edge, so each chart sits under its digit.
        _, img_h, (pad_x, _, _, scale) = gallery(
            fig,
            images[part],
            cols,
            [[f"test #{i}"] for i in indices[part]],
            left=left,
            top=top,
            width=width,
            gap=gap,
            line_height=0.17,
        )
        span = len(indices[part]) * (28 + pad_x) - pad_x  # a short last row: shorter bars axes
        bars_top = top + img_h + 0.06
        bx = fig.add_axes((left / WIDTH, 1 - (bars_top + bars_h) / height, span * scale / WIDTH, bars_h / height))
        _probability_bars(bx, probs[part], pad_x, span, colours)
    return finish(
        fig,
        "worst_cases",
        f"The network's most frequent confusion, {count} test images labelled {ref} but "
        f"predicted {pred}; under each digit its probability for every digit 0-9 "
        f"(blue: the label, orange and hatched: the prediction).",
        f"{n} handwritten digits labelled {ref} that the network read as {pred}, each with "
        "a bar chart of its ten class probabilities.",
    )


def _worst_header(fig, title: str, ref: int, pred: int, left: float, height: float) -> None:
    """The figure's title and, under it, the key to the bars' colours."""
    fig.text(left / WIDTH, 1 - 0.1 / height, title, fontsize=10, va="top")
    fig.legend(
        handles=[
            Patch(color=BLUE, label=f"label {ref}"),
            Patch(facecolor=VERMILION, edgecolor="white", hatch=HATCH, lw=0, label=f"prediction {pred}"),
            Patch(color=GREY, label="other digits"),
        ],
        loc="upper left",
        bbox_to_anchor=(left / WIDTH - 0.01, 1 - 0.26 / height),
        ncols=3,
        handlelength=1.0,
        columnspacing=1.0,
    )


def _probability_bars(bx, probabilities: np.ndarray, pad_x: int, span: int, colours: list[str]) -> None:
    """Ten bars per digit, each group under its digit: x counts image elements as the gallery does."""
    step = 28 / 10
    positions: list[float] = []
    labels: list[str] = []
    for j, p in enumerate(probabilities):
        x = j * (28 + pad_x) + (np.arange(10) + 0.5) * step - 0.5
        hatch_vermilion(bx.bar(x, p, step * 0.8, color=colours), colours)
        positions.extend(x)
        labels.extend(str(d) for d in range(10))
    bx.set_xlim(-0.5, span - 0.5)
    bx.set_ylim(0, 1)
    bx.set_yticks([0, 0.5, 1], ["0", ".5", "1"])
    bx.set_xticks(positions, labels)
    bx.tick_params(axis="x", length=0, pad=1)
    bx.set_ylabel("probability")
    bx.set_xlabel("digit", labelpad=1)


@styled
def top_errors(dataset: Dataset, mistakes: tuple[Mistake, ...], limit: int = 20) -> Figure:
    errors = mistakes[:limit]
    if not errors:
        return message(
            "top_errors",
            "No test image was misclassified.",
            "The most confident mistakes: none, every test image was classified correctly.",
        )
    images = test_images(dataset, [e.index for e in errors], "metrics.json top_errors")
    lines = [[f"{e.label} → {e.prediction}", f"p={e.confidence:.2f}"] for e in errors]
    title = "The most confident mistakes: label → prediction, and the probability the network gave its prediction"
    fig = titled_gallery(images, lines, title, row_height=1.02)
    worst = errors[0]
    return finish(
        fig,
        "top_errors",
        f"The {len(errors)} test images the network got wrong with the highest confidence, "
        f"most confident first; label → prediction above each, e.g. {article(worst.label)} {worst.label} read as "
        f"{worst.prediction} with p={worst.confidence:.2f}.",
        f"{len(errors)} misclassified digits with their labels, predictions and confidences.",
    )
