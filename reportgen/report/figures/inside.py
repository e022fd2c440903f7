"""Section 7, Inside the network: the learned kernels and every layer's output for a digit."""

from __future__ import annotations

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.patches import Patch

from reportgen.data import Dataset
from reportgen.layers import LAYERS, SATURATION, SHAPES, TANH_RANGE
from reportgen.report.figures.style import (
    BLUE,
    DARK,
    DIGITS,
    DIVERGING,
    GREY,
    HATCH,
    PAD_SIGNED,
    TANH,
    VERMILION,
    Figure,
    bare,
    class_colours,
    colormap,
    enlarge,
    finish,
    hatch_vermilion,
    imshow,
    mosaic,
    new,
    styled,
    symmetric,
    test_images,
    tile,
)
from reportgen.run.inspection import Inspection

# -- kernels ----------------------------------------------------------------------------


@styled
def kernels_conv1(kernels: np.ndarray) -> Figure:
    kernels = np.asarray(kernels, dtype=np.float64)
    maps = kernels.reshape(-1, *kernels.shape[-2:])  # (20, 5, 5)
    fig = new(3.5)
    ax = fig.add_subplot()
    norm = symmetric(maps)
    image = mosaic(ax, maps, 5, colormap(DIVERGING, PAD_SIGNED), norm, noun="filter")
    ax.set_title(f"conv1: {len(maps)} learned {maps.shape[1]}×{maps.shape[2]} kernels")
    fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02, label="weight (red > 0 > blue)")
    return finish(
        fig,
        "kernels_conv1",
        "conv1's 20 filters as learned: each 5 × 5 grid of weights is slid over the digit; "
        "red pixels add ink's brightness, blue subtract it, so a red-beside-blue pattern "
        "detects an edge of that orientation.",
        "Twenty 5 by 5 convolution kernels in red and blue.",
    )


@styled
def kernels_conv2(kernels: np.ndarray) -> Figure:
    kernels = np.asarray(kernels, dtype=np.float64)  # (50, 20, 5, 5)
    out_c, in_c, kh, kw = kernels.shape
    half = -(-out_c // 2)
    # Most of the 25,000 weights are small; a few large ones would wash the rest out to
    # white, so the scale stops at the 99.5th percentile of |w| (the colour bar's arrows).
    limit = float(np.percentile(np.abs(kernels), 99.5)) or 1.0
    norm = mcolors.Normalize(-limit, limit)
    cmap = colormap(DIVERGING, PAD_SIGNED)
    factor, gap = 5, 2
    step = kh * factor + gap
    fig = new(4.1)
    axes = fig.subplots(1, 2)
    # Two halves side by side: 25 rows x 20 columns each fits the page; one 50-row
    # column of kernels would be twice as tall and half as wide as the page allows.
    for part, ax in enumerate(axes):
        first = part * half
        block = kernels[first : first + half]
        rows = len(block)
        image = ax.imshow(
            tile(enlarge(block.reshape(-1, kh, kw), factor), in_c, gap), cmap=cmap, norm=norm, interpolation="none"
        )
        ax.set_yticks(
            [r * step + (kh * factor - 1) / 2 for r in range(0, rows, 5)], [str(first + r) for r in range(0, rows, 5)]
        )
        ax.set_xticks(
            [c * step + (kw * factor - 1) / 2 for c in range(0, in_c, 5)], [str(c) for c in range(0, in_c, 5)]
        )
        ax.set_xlabel("input channel (pool1 map)")
        ax.set_ylabel("conv2 filter (output map)")
        ax.set_title(f"filters {first}-{first + rows - 1}")
        bare(ax)
        ax.tick_params(length=2)
    fig.colorbar(
        image,
        ax=list(axes),
        shrink=0.8,
        pad=0.02,
        extend="both",
        label=f"weight, clipped at ±{limit:.2g} (99.5% of |w| within)",
    )
    fig.suptitle(f"conv2: {out_c} × {in_c} learned {kh}×{kw} kernels", x=0.02, ha="left", fontsize=9)
    return finish(
        fig,
        "kernels_conv2",
        "conv2's 1,000 kernels: row = one of its 50 filters, column = the pool1 map it reads; "
        "a filter's row shows how it mixes the 20 conv1 features into one new map.",
        "Mosaic of 50 by 20 small 5 by 5 kernels in red and blue.",
    )


# -- inside the network -----------------------------------------------------------------


def _case_text(inspection: Inspection, case: int) -> tuple[int, int, int]:
    return (int(inspection.indices[case]), int(inspection.labels[case]), int(inspection.predictions[case]))


@styled
def inside_input(dataset: Dataset, inspection: Inspection, case: int, pixels: str = "unit") -> Figure:
    index, label, prediction = _case_text(inspection, case)
    image = test_images(dataset, [index], "inspection")[0]
    probability = float(np.asarray(inspection.outputs["softm"])[case][prediction])
    fig = new(3.0, width=3.7)
    ax = fig.add_subplot()
    shown = imshow(ax, image.astype(np.float64), target=280, cmap=DIGITS, vmin=0, vmax=255)
    ax.set_xticks([0, 7, 14, 21, 27])
    ax.set_yticks([0, 7, 14, 21, 27])
    ax.set_xlabel("pixel column")
    ax.set_ylabel("pixel row")
    verdict = "right" if label == prediction else "wrong"
    ax.set_title(f"test #{index}: label {label}, predicted {prediction}")
    seen = "value/255" if pixels == "unit" else "the value as is"
    fig.colorbar(shown, ax=ax, shrink=0.85, pad=0.03, label=f"pixel value (network sees {seen})")
    return finish(
        fig,
        f"inside_{case}_input",
        f"The digit followed through the network below: test image #{index}, labelled "
        f"{label}, predicted {prediction} with p={probability:.2f} ({verdict}).",
        f"Handwritten digit {label}, test image {index}, predicted {prediction}.",
    )


def _saturation(values: np.ndarray) -> str:
    return f"{np.mean(np.abs(values) > SATURATION):.0%} of its units saturated (|x| > {SATURATION})"


def _layer_scale(layer: str, values: np.ndarray) -> tuple[mcolors.Normalize, str]:
    """tanh outputs on the fixed range [-1, 1]; anything else symmetric about 0."""
    if layer in TANH_RANGE:
        return TANH, "tanh output, fixed scale [-1, 1]"
    norm = symmetric(values)
    # A model fed raw 0-255 pixels gives conv1 outputs in the thousands: "±1,112", not "±1.11e+03".
    vmax = float(norm.vmax or 1.0)
    limit = f"{vmax:,.0f}" if vmax >= 1000 else f"{vmax:.3g}"
    return norm, f"{layer} output, ±{limit} (symmetric)"


def _layer_caption(layer: str, values: np.ndarray, drawn: str) -> str:
    saturated = f"; {_saturation(values)}" if layer in TANH_RANGE and layer.startswith("act") else ""
    return f"{layer}: {drawn}{saturated}."


@styled
def layer_maps(inspection: Inspection, case: int, layer: str) -> Figure:
    """A layer of k maps of h x w (conv, act, pool): one mosaic on the layer's colour scale."""
    index, label, prediction = _case_text(inspection, case)
    values = np.asarray(inspection.outputs[layer][case], dtype=np.float64)  # (k, h, w)
    k, h, w = values.shape
    norm, scale = _layer_scale(layer, values)
    cols = 5 if k <= 20 else 10
    fig = new(4.2 if k <= 20 else 3.5)
    ax = fig.add_subplot()
    image = mosaic(ax, values, cols, colormap(DIVERGING, PAD_SIGNED), norm)
    ax.set_title(f"{layer}: {k} maps of {h}×{w}, test #{index} (label {label}, predicted {prediction})")
    fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02, label=scale)
    return finish(
        fig,
        f"inside_{case}_{layer}",
        _layer_caption(
            layer,
            values,
            f"its {k} maps of {h} × {w} for test image #{index}, {cols} to a row, red above 0 and blue below ({scale})",
        ),
        f"{k} activation maps of layer {layer} for a digit {label}.",
    )


@styled
def layer_strip(inspection: Inspection, case: int, layer: str) -> Figure:
    """A layer of hundreds of values (flat, full1, act3): one heat strip, cells about square."""
    index, label, prediction = _case_text(inspection, case)
    values = np.asarray(inspection.outputs[layer][case], dtype=np.float64)
    norm, scale = _layer_scale(layer, values)
    if layer == "flat":  # 800 = 50 maps x 16 positions: one column per pool2 map
        grid = values.reshape(50, 16).T
        xlabel, ylabel = "pool2 map (channel)", "position in the 4×4 map"
        yticks = [(r, str(r)) for r in range(0, 16, 4)]
        drawn = "the 800 values, a column per pool2 map and a row per position in it"
    else:  # 500 units, 50 per row; unit number = row start + column
        grid = values.reshape(10, 50)
        xlabel, ylabel = "+ column: unit number = row start + column", "first unit of the row"
        yticks = [(r, str(r * 50)) for r in range(0, 10, 2)]
        drawn = "the 500 units, 50 to a row"
    fig = new(1.2 + 0.09 * len(grid))  # cells about square at the page's width
    ax = fig.add_subplot()
    # aspect "auto": the strip fills the width and its colour bar matches its height
    image = imshow(ax, grid, cmap=colormap(DIVERGING, PAD_SIGNED), norm=norm, aspect="auto")
    ax.set_xticks(range(0, 50, 5))
    ax.set_yticks(*zip(*yticks))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    bare(ax)
    ax.tick_params(length=2)
    ax.set_title(f"{layer}: {values.size} values, test #{index} (label {label}, predicted {prediction})")
    fig.colorbar(image, ax=ax, pad=0.015, fraction=0.04, label=scale)
    return finish(
        fig,
        f"inside_{case}_{layer}",
        _layer_caption(layer, values, f"{drawn}, for test image #{index} ({scale})"),
        f"Heat strip of the {values.size} values of layer {layer}.",
    )


@styled
def layer_scores(inspection: Inspection, case: int, layer: str) -> Figure:
    """A layer of ten values, one per digit (full2, softm): bars, the label and prediction in colour."""
    index, label, prediction = _case_text(inspection, case)
    values = np.asarray(inspection.outputs[layer][case], dtype=np.float64)  # (10,)
    fig = new(2.5)
    ax = fig.add_subplot()
    colours = class_colours(label, prediction)
    bars = ax.bar(range(10), values, 0.7, color=colours)
    hatch_vermilion(bars, colours)
    shown = [f"{v:.2f}" if layer == "full2" or v >= 0.005 else "" for v in values]
    ax.bar_label(bars, labels=shown, padding=2, fontsize=8)
    ax.axhline(0, color=DARK, lw=0.6)
    ax.set_xticks(range(10))
    ax.set_xlabel("digit")
    if layer == "softm":
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("probability")
        drawn = f"the ten probabilities; the network says {prediction} with p={values[prediction]:.2f}"
    else:
        low, high = min(values.min(), 0), max(values.max(), 0)
        margin = 0.18 * (high - low or 1)
        ax.set_ylim(low - (margin if low < 0 else 0), high + margin)
        ax.set_ylabel("score (logit)")
        drawn = f"the ten scores; {prediction} leads"
    if label == prediction:
        right = [Patch(color=BLUE, label=f"label {label} = prediction")]
    else:
        right = [
            Patch(color=BLUE, label=f"label {label}"),
            Patch(facecolor=VERMILION, edgecolor="white", hatch=HATCH, lw=0, label=f"prediction {prediction}"),
        ]
    ax.legend(
        handles=right + [Patch(color=GREY, label="other digits")],
        loc="lower right",
        bbox_to_anchor=(1, 1),
        ncols=3,
        borderaxespad=0.2,
    )
    ax.set_title(f"{layer}: test #{index} (label {label}, predicted {prediction})")
    return finish(
        fig,
        f"inside_{case}_{layer}",
        _layer_caption(layer, values, f"{drawn}, for test image #{index}"),
        f"Bar chart of the ten {layer} values for a digit {label}, predicted {prediction}.",
    )


_DRAWN_AS = {
    **{layer: layer_maps for layer in LAYERS if len(SHAPES[layer]) == 3},
    "flat": layer_strip,
    "full1": layer_strip,
    "act3": layer_strip,
    "full2": layer_scores,
    "softm": layer_scores,
}


def inside_layer(inspection: Inspection, case: int, layer: str) -> Figure:
    """A layer's output for one inspected digit, drawn as its shape asks."""
    return _DRAWN_AS[layer](inspection, case, layer)
