"""Section 7, Inside the network: the learned kernels and every layer's output for a digit."""
from __future__ import annotations

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.patches import Patch

from reportgen.data import Dataset
from reportgen.figures._style import (
    BLUE, DARK, DIGITS, DIVERGING, Figure, GREY, InspectionLike, PAD_SIGNED, TANH, VERMILION, _bare,
    _class_colours, _cmap, _enlarge, _finish, _imshow, _mosaic, _new, _styled, _symmetric,
    _test_images, tile
)


# -- kernels ----------------------------------------------------------------------------

@_styled
def kernels_conv1(kernels: np.ndarray) -> Figure:
    kernels = np.asarray(kernels, dtype=np.float64)
    maps = kernels.reshape(-1, *kernels.shape[-2:])  # (20, 5, 5)
    fig = _new(3.5)
    ax = fig.add_subplot()
    norm = _symmetric(maps)
    image = _mosaic(ax, maps, 5, _cmap(DIVERGING, PAD_SIGNED), norm, noun="filter")
    ax.set_title(f"conv1: {len(maps)} learned {maps.shape[1]}×{maps.shape[2]} kernels")
    fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02, label="weight (red > 0 > blue)")
    return _finish(fig, "kernels_conv1",
                   "conv1's 20 filters as learned: each 5 × 5 grid of weights is slid over the digit; "
                   "red pixels add ink's brightness, blue subtract it, so a red-beside-blue pattern "
                   "detects an edge of that orientation.",
                   "Twenty 5 by 5 convolution kernels in red and blue.")


@_styled
def kernels_conv2(kernels: np.ndarray) -> Figure:
    kernels = np.asarray(kernels, dtype=np.float64)  # (50, 20, 5, 5)
    out_c, in_c, kh, kw = kernels.shape
    half = -(-out_c // 2)
    # Most of the 25,000 weights are small; a few large ones would wash the rest out to
    # white, so the scale stops at the 99.5th percentile of |w| (the colour bar's arrows).
    limit = float(np.percentile(np.abs(kernels), 99.5)) or 1.0
    norm = mcolors.Normalize(-limit, limit)
    cmap = _cmap(DIVERGING, PAD_SIGNED)
    factor, gap = 5, 2
    step = kh * factor + gap
    fig = _new(4.1)
    axes = fig.subplots(1, 2)
    # Two halves side by side: 25 rows x 20 columns each fits the page; one 50-row
    # column of kernels would be twice as tall and half as wide as the page allows.
    for part, ax in enumerate(axes):
        first = part * half
        block = kernels[first:first + half]
        rows = len(block)
        image = ax.imshow(tile(_enlarge(block.reshape(-1, kh, kw), factor), in_c, gap), cmap=cmap,
                          norm=norm, interpolation="none")
        ax.set_yticks([r * step + (kh * factor - 1) / 2 for r in range(0, rows, 5)],
                      [str(first + r) for r in range(0, rows, 5)])
        ax.set_xticks([c * step + (kw * factor - 1) / 2 for c in range(0, in_c, 5)],
                      [str(c) for c in range(0, in_c, 5)])
        ax.set_xlabel("input channel (pool1 map)")
        ax.set_ylabel("conv2 filter (output map)")
        ax.set_title(f"filters {first}-{first + rows - 1}")
        _bare(ax)
        ax.tick_params(length=2)
    fig.colorbar(image, ax=list(axes), shrink=0.8, pad=0.02, extend="both",
                 label=f"weight, clipped at ±{limit:.2g} (99.5% of |w| within)")
    fig.suptitle(f"conv2: {out_c} × {in_c} learned {kh}×{kw} kernels", x=0.02, ha="left", fontsize=9)
    return _finish(fig, "kernels_conv2",
                   "conv2's 1,000 kernels: row = one of its 50 filters, column = the pool1 map it reads; "
                   "a filter's row shows how it mixes the 20 conv1 features into one new map.",
                   "Mosaic of 50 by 20 small 5 by 5 kernels in red and blue.")


# -- inside the network -----------------------------------------------------------------

_READING = {
    "conv1": "The first convolution, before tanh: each map is one 5 × 5 filter slid over the digit; "
             "red where the stroke matches the filter, blue where it matches its opposite",
    "act1": "tanh squashes each conv1 map into [-1, 1]; saturated units (dark red/blue) are where "
            "the filter fires strongly",
    "pool1": "Max pooling keeps the strongest of each 2 × 2 block of act1: the same maps at half "
             "the resolution, 12 × 12",
    "conv2": "The second convolution, before tanh: each map sums 5 × 5 windows of all 20 pool1 "
             "maps; the digit's shape gives way to where parts of strokes are",
    "act2": "tanh squashes each conv2 map into [-1, 1]; dark red/blue units are the features "
            "conv2 finds clearly",
    "pool2": "Max pooling leaves 50 maps of 4 × 4: the coarse positions of 50 features",
    "flat": "Flattening lays pool2's 50 maps of 4 × 4 side by side as 800 numbers: column = map, "
            "rows = its 16 positions in reading order",
    "full1": "The first fully connected layer, before tanh: 500 weighted sums of all 800 flat "
             "values, 50 per row",
    "act3": "tanh of full1: the 500 features the last layer reads, 50 per row",
    "full2": "The last layer's ten scores (logits), one per digit, each a weighted sum of the 500 "
             "act3 features; the highest wins",
    "softm": "Softmax turns the ten scores into probabilities that sum to 1",
}

_TANH_RANGE = {"act1", "pool1", "act2", "pool2", "flat", "act3"}  # values within [-1, 1]


def _case_text(inspection: InspectionLike, case: int) -> tuple[int, int, int]:
    return (int(inspection.indices[case]), int(inspection.labels[case]),
            int(inspection.predictions[case]))


@_styled
def inside_input(dataset: Dataset, inspection: InspectionLike, case: int) -> Figure:
    index, label, prediction = _case_text(inspection, case)
    image = _test_images(dataset, [index], "inspection")[0]
    probability = float(np.asarray(inspection.outputs["softm"])[case][prediction])
    fig = _new(3.0, width=3.7)
    ax = fig.add_subplot()
    shown = _imshow(ax, image.astype(np.float64), target=280, cmap=DIGITS, vmin=0, vmax=255)
    ax.set_xticks([0, 7, 14, 21, 27])
    ax.set_yticks([0, 7, 14, 21, 27])
    ax.set_xlabel("pixel column")
    ax.set_ylabel("pixel row")
    verdict = "right" if label == prediction else "wrong"
    ax.set_title(f"test #{index}: label {label}, predicted {prediction}")
    fig.colorbar(shown, ax=ax, shrink=0.85, pad=0.03, label="pixel value (network sees value/255)")
    return _finish(fig, f"inside_{case}_input",
                   f"The digit followed through the network below: test image #{index}, labelled "
                   f"{label}, predicted {prediction} with p={probability:.2f} ({verdict}).",
                   f"Handwritten digit {label}, test image {index}, predicted {prediction}.")


def _saturation(values: np.ndarray) -> str:
    return f"{np.mean(np.abs(values) > 0.99):.0%} of units saturated (|x| > 0.99)"


@_styled
def inside_layer(inspection: InspectionLike, case: int, layer: str) -> Figure:
    index, label, prediction = _case_text(inspection, case)
    values = np.asarray(inspection.outputs[layer][case], dtype=np.float64)
    name = f"inside_{case}_{layer}"
    about = f"test #{index} (label {label}, predicted {prediction})"
    caption = _READING[layer]
    if layer in _TANH_RANGE and layer.startswith("act"):
        caption += f"; here {_saturation(values)}"
    norm = TANH if layer in _TANH_RANGE else _symmetric(values)
    cmap = _cmap(DIVERGING, PAD_SIGNED)
    scale = ("tanh output, fixed scale [-1, 1]" if layer in _TANH_RANGE
             else f"{layer} output, ±{norm.vmax:.3g} (symmetric)")
    if values.ndim == 3:  # k maps of h x w
        k, h, w = values.shape
        cols = 5 if k <= 20 else 10
        fig = _new(4.2 if k <= 20 else 3.5)
        ax = fig.add_subplot()
        image = _mosaic(ax, values, cols, cmap, norm)
        ax.set_title(f"{layer}: {k} maps of {h}×{w}, {about}")
        fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02, label=scale)
        alt = f"{k} activation maps of layer {layer} for a digit {label}."
    elif layer in ("flat", "full1", "act3"):
        if layer == "flat":  # 800 = 50 maps x 16 positions: one column per pool2 map
            grid = values.reshape(50, 16).T
            xlabel, ylabel = "pool2 map (channel)", "position in the 4×4 map"
            yticks = [(r, str(r)) for r in range(0, 16, 4)]
        else:  # 500 units, 50 per row; unit number = row start + column
            grid = values.reshape(10, 50)
            xlabel, ylabel = "+ column: unit number = row start + column", "first unit of the row"
            yticks = [(r, str(r * 50)) for r in range(0, 10, 2)]
        fig = _new(1.2 + 0.09 * len(grid))  # cells about square at the page's width
        ax = fig.add_subplot()
        # aspect "auto": the strip fills the width and its colour bar matches its height
        image = _imshow(ax, grid, cmap=cmap, norm=norm, aspect="auto")
        ax.set_xticks(range(0, 50, 5))
        ax.set_yticks(*zip(*yticks))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        _bare(ax)
        ax.tick_params(length=2)
        ax.set_title(f"{layer}: {values.size} values, {about}")
        fig.colorbar(image, ax=ax, pad=0.015, fraction=0.04, label=scale)
        alt = f"Heat strip of the {values.size} values of layer {layer}."
    else:  # full2, softm: ten numbers, one per digit
        fig = _new(2.5)
        ax = fig.add_subplot()
        bars = ax.bar(range(10), values, 0.7, color=_class_colours(label, prediction))
        shown = [f"{v:.2f}" if layer == "full2" or v >= 0.005 else "" for v in values]
        ax.bar_label(bars, labels=shown, padding=2, fontsize=8)
        ax.axhline(0, color=DARK, lw=0.6)
        ax.set_xticks(range(10))
        ax.set_xlabel("digit")
        if layer == "softm":
            ax.set_ylim(0, 1.15)
            ax.set_ylabel("probability")
            caption += f"; the network says {prediction} with p={values[prediction]:.2f}"
        else:
            low, high = min(values.min(), 0), max(values.max(), 0)
            margin = 0.18 * (high - low or 1)
            ax.set_ylim(low - (margin if low < 0 else 0), high + margin)
            ax.set_ylabel("score (logit)")
        if label == prediction:
            right = [Patch(color=BLUE, label=f"label {label} = prediction")]
        else:
            right = [Patch(color=BLUE, label=f"label {label}"),
                     Patch(color=VERMILION, label=f"prediction {prediction}")]
        ax.legend(handles=right + [Patch(color=GREY, label="other digits")], loc="lower right",
                  bbox_to_anchor=(1, 1), ncols=3, borderaxespad=0.2)
        ax.set_title(f"{layer}: {about}")
        alt = f"Bar chart of the ten {layer} values for a digit {label}, predicted {prediction}."
    return _finish(fig, name, caption + ".", alt)
