"""Stage 5: every figure of the report, as SVG, from the values the earlier stages hand on.

Each figure is a pure function: values in, `Figure` (name, caption, alt text, SVG bytes)
out; the same values give the same bytes. No pyplot: each function builds its own
matplotlib Figure and saves it under a local rc_context, so nothing leaks between
figures or into the caller's matplotlib state.

Sizes are print sizes: 6.7 inches is the report's 17 cm content width on A4, fonts are
8-10 pt at that width, and no figure is taller than 9 inches. Grids of maps and digits
are tiled into one array with numpy and drawn by one imshow; the SVG carries that image
at its own resolution with `image-rendering: pixelated`, so every value stays a crisp
square in browsers and in WeasyPrint's PDF.

One colour scheme throughout:
  - magnitudes (counts): SEQUENTIAL ("viridis");
  - signed values (activations, kernels): DIVERGING ("RdBu_r", red > 0 > blue), always
    with limits symmetric about 0; tanh outputs on the fixed range [-1, 1];
  - digits as the seed shows them: dark ink on white ("gray_r", 0..255);
  - one accent pair: BLUE for train, the label, correct; VERMILION for test, the
    prediction, wrong (Okabe-Ito colours, distinguishable with colour blindness).
"""
from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import FancyBboxPatch, Patch, Rectangle

from reportgen import model, seed
from reportgen.data import Dataset
from reportgen.errors import RenderError

WIDTH = 6.7  # inches: the report's content width (17 cm on A4 portrait)
MAX_HEIGHT = 9.0  # inches: a figure and its caption fit on one A4 page

SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"
DIGITS = "gray_r"
BLUE = "#0072B2"  # train, label, correct
VERMILION = "#D55E00"  # test, prediction, wrong
GREY = "#A0A0A0"  # everything else (other classes, reference lines)
DARK = "#333333"
PAD_SIGNED = "#B8B8B8"  # tile padding on a diverging map: not a colour the map uses
PAD_PLAIN = "white"

_RC = {
    "svg.hashsalt": "reportgen",  # fixed element ids: same values, same bytes
    "svg.fonttype": "none",  # text stays text: small, selectable, searchable
    "svg.image_inline": True,
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 10,
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.h_pad": 0.04,
    "figure.constrained_layout.w_pad": 0.04,
}


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, e.g. "confusion"
    caption: str  # one line: what it shows and how to read it
    alt: str  # alt text
    svg: bytes

    @property
    def filename(self) -> str:
        return f"{self.name}.svg"

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


class InspectionLike(Protocol):
    """What figures need of inspection.Inspection (kept structural: no import of that stage)."""

    indices: np.ndarray  # (c,)
    labels: np.ndarray  # (c,)
    predictions: np.ndarray  # (c,)
    outputs: dict[str, np.ndarray]  # layer -> (c, *model.SHAPES[layer])
    kernels: dict[str, np.ndarray]  # "conv1" (20,1,5,5), "conv2" (50,20,5,5)


# -- plumbing ---------------------------------------------------------------------------

def _styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure function under the house style, restoring matplotlib's state after."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(_RC):
            return func(*args, **kwargs)
    return wrapper


def _new(height: float, width: float = WIDTH, layout: str | None = "constrained") -> MplFigure:
    # A bare Figure, not pyplot's: nothing global keeps it alive once we drop it.
    return MplFigure(figsize=(width, min(height, MAX_HEIGHT)), layout=layout)


def _finish(fig: MplFigure, name: str, caption: str, alt: str) -> Figure:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # no timestamp in the file
    fig.clear()  # free the artists now rather than at the next garbage collection
    return Figure(name=name, caption=caption, alt=alt, svg=buffer.getvalue())


def _message(name: str, text: str, caption: str, height: float = 0.8) -> Figure:
    """A figure that says, in words, why there is nothing to draw."""
    fig = _new(height, layout=None)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color=DARK)
    return _finish(fig, name, caption, text)


def _cmap(name: str, bad: str) -> mcolors.Colormap:
    return matplotlib.colormaps[name].with_extremes(bad=bad)


def _symmetric(values: np.ndarray) -> mcolors.Normalize:
    """Limits symmetric about 0, so white is exactly zero on the diverging map."""
    limit = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    limit = limit if limit > 0 and math.isfinite(limit) else 1.0
    return mcolors.Normalize(-limit, limit)


TANH = mcolors.Normalize(-1.0, 1.0)


def _bare(ax) -> None:
    """An image axes: no frame and no tick marks (the tick labels carry the numbers)."""
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)


def _share(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}%}"


def _luminance(rgba: Sequence[float]) -> float:
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _test_images(dataset: Dataset, indices: Sequence[int], source: str) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64)
    bad = indices[(indices < 0) | (indices >= len(dataset.test_x))]
    if bad.size:
        raise RenderError(f"{source}: test image {bad[0]} is beyond the {len(dataset.test_x)} "
                          "test images loaded (metrics from another data set?)")
    return dataset.test_x[indices]


# -- tiling -----------------------------------------------------------------------------

def tile(maps: np.ndarray, cols: int, pad: int | tuple[int, int] = 1,
         fill: float = np.nan) -> np.ndarray:
    """Tile k maps of h x w into one 2-D array, row by row, `cols` maps per row.

    pad: gap between tiles in elements, one number or (between rows, between columns);
    gaps and the unused tiles of the last row hold `fill` (NaN: drawn in the colour
    map's "bad" colour, so padding never looks like a value).
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"tile needs maps of shape (k, h, w) with k >= 1, not {maps.shape}")
    if cols < 1:
        raise ValueError(f"tile needs at least one column, not {cols}")
    pad_y, pad_x = (pad, pad) if np.ndim(pad) == 0 else pad
    k, h, w = maps.shape
    rows = -(-k // cols)
    cells = np.full((rows * cols, h + pad_y, w + pad_x), fill, dtype=np.float64)
    cells[:k, :h, :w] = maps
    # (rows, cols, h+py, w+px) -> (rows, h+py, cols, w+px): tiles side by side in each row
    out = cells.reshape(rows, cols, h + pad_y, w + pad_x).transpose(0, 2, 1, 3)
    out = out.reshape(rows * (h + pad_y), cols * (w + pad_x))
    return out[:out.shape[0] - pad_y, :out.shape[1] - pad_x]  # no gap after the last tile


def _factor(width: int, target: int = 600) -> int:
    return max(1, math.ceil(target / max(width, 1)))


def _enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    """Repeat each value factor x factor times along the last two axes.

    The SVG asks for crisp pixels, but some viewers smooth small images anyway
    (poppler, behind pdftoppm and many PDF readers, below 4x magnification): with
    each value a block of pixels, smoothing can only soften the blocks' edges.
    """
    return np.repeat(np.repeat(array, factor, axis=-2), factor, axis=-1)


def _imshow(ax, array: np.ndarray, target: int = 600, **kwargs: Any):
    """imshow in the array's own coordinates (element centres at integers), enlarged."""
    h, w = array.shape
    return ax.imshow(_enlarge(array, _factor(max(h, w), target)), interpolation="none",
                     extent=(-0.5, w - 0.5, h - 0.5, -0.5), **kwargs)


def _mosaic(ax, maps: np.ndarray, cols: int, cmap: mcolors.Colormap, norm: mcolors.Normalize,
            noun: str = "map", target: int = 600):
    """One imshow of the tiled maps; ticks name each tile as row start + column.

    The maps are enlarged before tiling so the gap between them can be the same
    share of a tile (6%) whatever the map size, rather than one whole value wide.
    """
    k, h, w = maps.shape
    factor = _factor(cols * w, target)
    gap = max(1, round(0.06 * min(h, w) * factor))
    image = ax.imshow(tile(_enlarge(maps, factor), cols, gap), cmap=cmap, norm=norm,
                      interpolation="none")
    rows = -(-k // cols)
    step_x, step_y = w * factor + gap, h * factor + gap
    ax.set_xticks([c * step_x + (w * factor - 1) / 2 for c in range(cols)],
                  [f"+{c}" for c in range(cols)])
    ax.set_yticks([r * step_y + (h * factor - 1) / 2 for r in range(rows)],
                  [str(r * cols) for r in range(rows)])
    ax.set_xlabel(f"+ column: {noun} number = row start + column")
    ax.set_ylabel(f"first {noun} of the row")
    _bare(ax)
    return image


# -- galleries of digits (exact layout in inches, so pixels stay square) ----------------

def _gallery(fig: MplFigure, images: np.ndarray, cols: int, lines: list[list[str]],
             left: float, top: float, width: float, gap: float, line_height: float = 0.15,
             fontsize: float = 8):
    """Digits in rows of `cols`, each with text lines above it.

    Returns the axes, its height in inches, and (column gap, top margin, row gap) in
    image elements with the inches per element, for placing things under the tiles.
    left/top/width in inches from the figure's left and top edges. The tiles are drawn
    as one image; each digit gets a thin grey frame so white backgrounds stay apart.
    """
    n = len(images)
    fig_w, fig_h = fig.get_size_inches()
    tile_in = (width - (cols - 1) * gap) / cols
    per_in = 28 / tile_in  # image elements per inch
    text_px = max(len(line) for line in lines) * line_height * per_in if lines else 0.0
    pad_x = gap * per_in
    pad_y = gap * per_in + text_px
    # Integer pads for tile(); the layout uses the same rounded numbers.
    pad_x, pad_y, top_px = round(pad_x), round(pad_y), math.ceil(text_px)
    mosaic = tile(images.astype(np.float64), min(cols, n), (pad_y, pad_x))
    mosaic = np.vstack([np.full((top_px, mosaic.shape[1]), np.nan), mosaic])
    h_px, w_px = mosaic.shape
    scale = tile_in / 28  # inches per element
    ax = fig.add_axes((left / fig_w, 1 - (top + h_px * scale) / fig_h,
                       w_px * scale / fig_w, h_px * scale / fig_h))
    ax.imshow(_enlarge(mosaic, 3), cmap=_cmap(DIGITS, PAD_PLAIN), vmin=0, vmax=255,
              interpolation="none", aspect="auto", extent=(-0.5, w_px - 0.5, h_px - 0.5, -0.5))
    ax.set_axis_off()
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = c * (28 + pad_x) - 0.5
        y0 = top_px + r * (28 + pad_y) - 0.5
        ax.add_patch(Rectangle((x0, y0), 28, 28, fill=False, lw=0.5, ec="#C8C8C8"))
        ax.text(x0 + 14, y0 - 0.6, "\n".join(lines[i]), ha="center", va="bottom", color=DARK,
                linespacing=1.15, fontsize=fontsize)
    return ax, h_px * scale, (pad_x, top_px, pad_y, scale)


# -- data -------------------------------------------------------------------------------

@_styled
def first_digits(dataset: Dataset, count: int = 10) -> Figure:
    images = dataset.train_x[:count]
    labels = [int(y) for y in dataset.train_y[:count]]
    fig = _new(1.25, layout=None)
    fig.text(0.1 / WIDTH, 1 - 0.06 / 1.25, f"The first {len(images)} training images, each under its label",
             ha="left", va="top", fontsize=9)
    _gallery(fig, images, count, [[str(y)] for y in labels], left=0.1, top=0.28,
             width=WIDTH - 0.2, gap=0.08, line_height=0.19, fontsize=10)
    shown = ", ".join(map(str, labels))
    return _finish(fig, "first_digits",
                   f"The first {len(images)} training digits as stored, dark ink on white, each "
                   f"under its label ({shown}); the seed showed the first five, 5, 0, 4, 1, 9.",
                   f"The first {len(images)} training digits, labelled {shown}.")


@_styled
def class_counts(dataset: Dataset) -> Figure:
    train = np.bincount(dataset.train_y, minlength=10)[:10]
    test = np.bincount(dataset.test_y, minlength=10)[:10]
    fig = _new(2.6)
    ax = fig.add_subplot()
    x = np.arange(10)
    width = 0.4
    # Shares, not counts, on the axis: the splits differ six-fold in size, and the
    # question is whether they hold the digits in the same proportions.
    for offset, counts, colour, label in ((-width / 2, train, BLUE, "train"),
                                          (width / 2, test, VERMILION, "test")):
        total = max(int(counts.sum()), 1)
        bars = ax.bar(x + offset, counts / total, width, color=colour,
                      label=f"{label} ({int(counts.sum()):,} images)")
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], rotation=90, padding=2, fontsize=8,
                     color=DARK)
    top = max((train / max(train.sum(), 1)).max(), (test / max(test.sum(), 1)).max())
    ax.set_ylim(0, top * 1.4)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xticks(x)
    ax.set_xlabel("digit")
    ax.set_ylabel("share of the split")
    ax.set_title("Images per digit (bar labels: counts)")
    ax.legend(loc="upper left", ncols=2)
    rare, common = int(np.argmin(train)), int(np.argmax(train))
    return _finish(fig, "class_counts",
                   f"How many images of each digit the training and test sets hold (bar height: share "
                   f"of the split; label: count); the training set has the fewest {rare}s "
                   f"({train[rare]:,}) and the most {common}s ({train[common]:,}).",
                   "Grouped bar chart of images per digit 0 to 9, training and test sets.")


# -- network ----------------------------------------------------------------------------

def _shape_text(shape: Sequence[int]) -> str:
    return " × ".join(str(s) for s in shape)


@_styled
def network() -> Figure:
    counts = model.parameter_counts()
    boxes = [("data", ["input image"], (1, 28, 28), 0)]
    boxes += [(layer, model.KINDS[layer].split(", "), model.SHAPES[layer], counts[layer])
              for layer in model.LAYERS]
    cols, box_w, box_h, row_gap, margin = 4, 1.38, 0.86, 0.42, 0.08
    rows = -(-len(boxes) // cols)
    slot = (WIDTH - 2 * margin) / cols
    height = rows * box_h + (rows - 1) * row_gap + 2 * margin + 0.22
    fig = _new(height, layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, height)  # data units are inches: boxes and text stay where placed
    ax.set_axis_off()
    centres = []
    for i, (name, kind, shape, params) in enumerate(boxes):
        r, c = divmod(i, cols)
        cx = margin + slot * (c + 0.5)
        top = height - margin - r * (box_h + row_gap)
        centres.append((cx, top))
        learned = params > 0
        ax.add_patch(FancyBboxPatch((cx - box_w / 2, top - box_h), box_w, box_h,
                                    boxstyle="round,pad=0,rounding_size=0.06", lw=0.8, ec=DARK,
                                    fc=mcolors.to_rgba(BLUE, 0.13) if learned else "white"))
        text = [name, *kind, "output " + _shape_text(shape)]
        ax.text(cx, top - 0.07, name, ha="center", va="top", fontsize=9, fontweight="bold")
        detail = "\n".join(text[1:]) + (f"\n{params:,} weights" if learned else "")
        ax.text(cx, top - 0.25, detail, ha="center", va="top", fontsize=8, linespacing=1.2,
                color=DARK)
    arrow = dict(arrowstyle="-|>", color=DARK, lw=0.8, mutation_scale=8, shrinkA=0, shrinkB=0)
    for i in range(len(boxes) - 1):
        (x0, t0), (x1, t1) = centres[i], centres[i + 1]
        if t0 == t1:  # same row: left to right
            ax.annotate("", xy=(x1 - box_w / 2, t1 - box_h / 2), xytext=(x0 + box_w / 2, t0 - box_h / 2),
                        arrowprops=arrow)
        else:  # down from the row's last box, back along the gap, into the next row's first
            mid = t0 - box_h - row_gap / 2
            ax.plot([x0, x0, x1], [t0 - box_h, mid, mid], color=DARK, lw=0.8, solid_joinstyle="miter")
            ax.annotate("", xy=(x1, t1), xytext=(x1, mid), arrowprops=arrow)
    ax.add_patch(Rectangle((margin, 0.06), 0.22, 0.11, fc=mcolors.to_rgba(BLUE, 0.13), ec=DARK, lw=0.6))
    total = sum(counts.values())
    ax.text(margin + 0.3, 0.115, f"shaded: layers with learned weights ({total:,} in all); "
            "shapes are channels × height × width per image", va="center", fontsize=8, color=DARK)
    return _finish(fig, "network",
                   "The seed's LeNet, read left to right and row by row: each box names a layer, "
                   "what it does and the shape of its output for one 28 × 28 digit.",
                   "Diagram of the network: data, conv1, act1, pool1, conv2, act2, pool2, flat, "
                   "full1, act3, full2, softm, with output shapes.")


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


@_styled
def training_batches(history: dict) -> Figure:
    batches = history.get("batches") or []
    if not batches:
        return _message("training_batches", "No training in this run: the model was loaded, not trained.",
                        "Per-batch training loss and accuracy: none, because this run trained nothing.")
    loss = np.array([b["loss"] for b in batches], dtype=np.float64)
    accuracy = np.array([b["accuracy"] for b in batches], dtype=np.float64)
    epochs = np.array([b["epoch"] for b in batches])
    n = len(batches)
    x = np.arange(1, n + 1)
    starts = np.flatnonzero(np.r_[True, epochs[1:] != epochs[:-1]])  # first batch of each epoch
    window = max(5, n // 60)
    fig = _new(4.0)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    for ax, values, label, key in ((ax_loss, loss, "loss (cross-entropy)", "loss"),
                                   (ax_acc, accuracy, "batch accuracy", "accuracy")):
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
        ax.set_ylabel(label)
    positive = loss[np.isfinite(loss) & (loss > 0)]
    if positive.size and positive.max() / positive.min() > 30:
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("loss (cross-entropy, log scale)")
    ax_acc.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    # Start the axis near the lowest 1% of batches: the first few batches of a run
    # would otherwise squash the long plateau near 100% into a flat line.
    floor = math.floor(float(np.nanpercentile(accuracy, 1)) * 10) / 10
    if n > 100 and floor > np.nanmin(accuracy):
        ax_acc.set_ylim(floor, 1.005)
        ax_acc.set_ylabel(f"batch accuracy (from {floor:.0%})")
    else:
        low = float(np.nanmin(accuracy)) if n > 1 else 0.0
        ax_acc.set_ylim(min(low, 0.9) - 0.02, 1.005)  # a lone batch or a flat run: show 0-100%
    boundaries = " (dotted lines: epoch boundaries)" if len(starts) > 1 else ""
    ax_acc.set_xlabel(f"batch, counted across epochs{boundaries}")
    ax_acc.set_xlim(0.5, n + 0.5)
    if n <= 10:
        ax_acc.set_xticks(x)
    else:
        ax_acc.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    if n > 1:  # a lone point needs no key; the caption says what it is
        ax_loss.legend(loc="lower left" if n > 800 else "best", ncols=2)
    # The epoch numbers along the top, at the middle of each epoch's batches.
    top = ax_loss.secondary_xaxis("top")
    ends = np.r_[starts[1:], n]
    step = max(1, math.ceil(len(starts) / 20))
    mids = (starts + 1 + ends) / 2
    top.set_xticks(mids[::step], [str(int(epochs[s])) for s in starts[::step]])
    top.tick_params(length=0)
    top.set_xlabel("epoch")
    if n > 800:
        how = f"; shading: the range of the raw values, line: mean of {window} batches"
    elif n >= 3 * window:
        how = f"; thin line: each batch, thick line: mean of {window} batches"
    else:
        how = ""
    first, last = float(np.mean(loss[:window])), float(np.mean(loss[-window:]))
    trend = f"; the loss went from about {first:.3g} to {last:.3g}" if n >= 2 * window else ""
    return _finish(fig, "training_batches",
                   f"Loss and accuracy of "
                   f"{'the only training batch' if n == 1 else f'each of the {n:,} training batches'}"
                   f" as training went{how}{trend}.",
                   "Two line charts of per-batch training loss and accuracy against batch number.")


@_styled
def training_epochs(history: dict) -> Figure:
    records = history.get("epochs") or []
    if not records:
        return _message("training_epochs", "No training in this run: the model was loaded, not trained.",
                        "Per-epoch accuracy, loss and time: none, because this run trained nothing.")
    e = np.array([r["epoch"] for r in records])

    def get(key: str) -> np.ndarray:  # None (NaN in JSON) becomes a gap in the line
        return np.array([np.nan if r.get(key) is None else r[key] for r in records], np.float64)

    fig = _new(2.7)
    ax_acc, ax_loss, ax_time = fig.subplots(1, 3)
    for ax, key, label in ((ax_acc, "accuracy", "accuracy"), (ax_loss, "loss", "loss (cross-entropy)")):
        # gid: each series is a <g id> in the SVG, findable by tests and scripts
        ax.plot(e, get(f"train_{key}"), "o-", color=BLUE, label="train (mean over the epoch)",
                gid=f"train-{key}")
        ax.plot(e, get(f"test_{key}"), "s-", color=VERMILION, label="test (end of the epoch)",
                gid=f"test-{key}")
        ax.set_ylabel(label)
    ax_acc.axhline(seed.ACCURACY, color=GREY, lw=0.8, ls="--")
    # Right end, under the line: the curves rise from the left and sit above it there.
    ax_acc.annotate(f"seed {seed.ACCURACY:.2%}", (1, seed.ACCURACY), xycoords=("axes fraction", "data"),
                    xytext=(-2, -3), textcoords="offset points", fontsize=8, color=DARK, ha="right", va="top",
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax_acc.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=1))
    ax_time.bar(e, get("seconds"), 0.6, color=BLUE, label="seconds training")
    ax_time.bar(e, get("eval_seconds"), 0.6, bottom=get("seconds"), color=VERMILION,
                alpha=0.6, label="seconds testing")
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
    fig.legend(handles + more, labels + names, loc="outside upper center", ncols=4,
               columnspacing=1.2, handlelength=1.6)
    last = records[-1]
    seconds = get("seconds")
    return _finish(fig, "training_epochs",
                   f"Accuracy and loss after each epoch, on the training batches and on the test set, "
                   f"and the seconds each epoch took; after epoch {last['epoch']} the test accuracy "
                   f"is {_share(last.get('test_accuracy'))} (seed: {seed.ACCURACY:.2%}), "
                   f"at {np.nanmean(seconds):.1f} s per epoch.",
                   "Three panels: accuracy, loss and seconds per epoch, train and test.")


# -- evaluation -------------------------------------------------------------------------

@_styled
def confusion(metrics: dict) -> Figure:
    table = np.asarray(metrics["confusion_matrix"], dtype=np.int64)  # rows predictions
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
            ax.text(c, r, f"{value}", ha="center", va="center", fontsize=8, color=colour,
                    gid=f"cell-{r}-{c}")
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
    p, r = np.unravel_index(int(np.argmax(errors)), errors.shape)
    n = int(table.sum())
    accuracy = np.trace(table) / n if n else float("nan")
    ax.set_title(f"{n:,} test images, {_share(accuracy)} on the diagonal", loc="center", pad=4,
                 y=-0.06, va="top")
    worst = (f"the largest error is {errors[p, r]} images of {r} predicted as {p}"
             if errors[p, r] else "there are no errors")
    return _finish(fig, "confusion",
                   f"Counts of test images by prediction (rows) and true label (columns), as the "
                   f"seed's table; colour on a log scale so single errors show; {worst}.",
                   f"Confusion matrix heat map, {k} by {k}, accuracy {_share(accuracy)}.")


@_styled
def reliability(metrics: dict) -> Figure:
    calibration = metrics.get("calibration") or {}
    bins = [b for b in calibration.get("bins", []) if b.get("count")
            and b.get("accuracy") is not None and b.get("confidence") is not None]
    ece = calibration.get("ece")
    ece_text = "n/a" if ece is None or not math.isfinite(ece) else f"{ece:.2%}"
    if not bins:
        return _message("reliability", "No test images to calibrate against.",
                        "Reliability diagram: empty, no test image was scored.")
    lower = np.array([b["lower"] for b in bins])
    width = np.array([b["upper"] - b["lower"] for b in bins])
    acc = np.array([b["accuracy"] for b in bins])
    conf = np.array([b["confidence"] for b in bins])
    count = np.array([b["count"] for b in bins])
    fig = _new(3.5)
    ax, ax_n = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    ax.bar(lower, acc, width, align="edge", color=BLUE, alpha=0.3, ec=BLUE, lw=0.6,
           label="accuracy in the bin")
    ax.bar(lower, conf - acc, width, bottom=acc, align="edge", color=VERMILION, alpha=0.45,
           lw=0, label="gap to mean confidence")
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
    ax_n.bar(lower, count, width, align="edge", color=DARK, alpha=0.75, ec="white", lw=0.6)
    ax_n.set_yscale("log")
    ax_n.set_xlim(0, 1)
    ax_n.set_ylim(0.7, count.max() * 40)  # room above the tallest bar for its label
    ax_n.xaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax_n.set_xlabel("confidence (probability of the predicted class)")
    ax_n.set_ylabel("test images in the bin (log scale)")
    ax_n.set_title("How many predictions fall in each bin")
    for x0, w, c in zip(lower, width, count):
        ax_n.text(x0 + w / 2, c * 1.15, f"{c:,}", ha="center", va="bottom", fontsize=8, rotation=90)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, handlelength=1.4,
               columnspacing=1.0)
    top = bins[-1]
    return _finish(fig, "reliability",
                   f"Predictions grouped by confidence: a well-calibrated network's bars touch the "
                   f"diagonal; expected calibration error (ECE, the count-weighted mean gap) "
                   f"{ece_text}; {top['count']:,} predictions fall in the top bin, "
                   f"{_share(top['accuracy'])} of them right.",
                   f"Reliability diagram with expected calibration error {ece_text}, and bin counts.")


# -- mistakes ---------------------------------------------------------------------------

def _class_colours(reference: int, prediction: int) -> list[str]:
    colours = [GREY] * 10
    colours[reference] = BLUE
    colours[prediction] = VERMILION if prediction != reference else BLUE
    return colours


@_styled
def worst_cases(dataset: Dataset, metrics: dict, limit: int = 10) -> Figure:
    pair = metrics.get("worst_pair") or {}
    count = int(pair.get("count") or 0)
    if count == 0 or not pair.get("indices"):
        return _message("worst_cases", "No test image was misclassified: there is no worst pair.",
                        "The worst confusion: none, every test image was classified correctly.")
    ref, pred = int(pair["reference"]), int(pair["prediction"])
    indices = [int(i) for i in pair["indices"][:limit]]
    probs = np.asarray(pair["probabilities"][:limit], dtype=np.float64)
    images = _test_images(dataset, indices, "metrics.json worst_pair")
    cols, n = 5, len(indices)
    rows = -(-n // cols)
    left, right, gap, bars_h, title_h, row_gap = 0.55, 0.1, 0.22, 0.72, 0.62, 0.42
    width = WIDTH - left - right
    tile_in = (width - (cols - 1) * gap) / cols
    row_h = tile_in + 0.17 + 0.06 + bars_h + row_gap
    height = title_h + rows * row_h
    fig = _new(height, layout=None)
    fig.text(left / WIDTH, 1 - 0.1 / height,
             f"Labelled {ref}, predicted {pred}: {n} of the {count} test images", fontsize=10,
             va="top")
    fig.legend(handles=[Patch(color=BLUE, label=f"label {ref}"),
                        Patch(color=VERMILION, label=f"prediction {pred}"),
                        Patch(color=GREY, label="other digits")],
               loc="upper left", bbox_to_anchor=(left / WIDTH - 0.01, 1 - 0.26 / height), ncols=3,
               handlelength=1.0, columnspacing=1.0)
    colours = _class_colours(ref, pred)
    for r in range(rows):
        part = slice(r * cols, min(n, (r + 1) * cols))
        top = title_h + r * row_h
        # The gallery's x axis counts image elements from its left edge; the bars below
        # use the same units from the same edge, so each chart sits under its digit.
        _, img_h, (pad_x, _, _, scale) = _gallery(
            fig, images[part], cols, [[f"test #{i}"] for i in indices[part]], left=left, top=top,
            width=width, gap=gap, line_height=0.17)
        span = len(indices[part]) * (28 + pad_x) - pad_x  # a short last row: shorter bars axes
        bars_top = top + img_h + 0.06
        bx = fig.add_axes((left / WIDTH, 1 - (bars_top + bars_h) / height,
                           span * scale / WIDTH, bars_h / height))
        step = 28 / 10
        positions, labels = [], []
        for j, p in enumerate(probs[part]):
            x = j * (28 + pad_x) + (np.arange(10) + 0.5) * step - 0.5
            bx.bar(x, p, step * 0.8, color=colours)
            positions.extend(x)
            labels.extend(str(d) for d in range(10))
        bx.set_xlim(-0.5, span - 0.5)
        bx.set_ylim(0, 1)
        bx.set_yticks([0, 0.5, 1], ["0", ".5", "1"])
        bx.set_xticks(positions, labels)
        bx.tick_params(axis="x", length=0, pad=1)
        bx.set_ylabel("probability")
        bx.set_xlabel("digit", labelpad=1)
    return _finish(fig, "worst_cases",
                   f"The network's most frequent confusion, {count} test images labelled {ref} but "
                   f"predicted {pred}; under each digit its probability for every digit 0-9 "
                   f"(blue: the label, orange: the prediction).",
                   f"{n} handwritten digits labelled {ref} that the network read as {pred}, each with "
                   "a bar chart of its ten class probabilities.")


@_styled
def top_errors(dataset: Dataset, metrics: dict, limit: int = 20) -> Figure:
    errors = (metrics.get("top_errors") or [])[:limit]
    if not errors:
        return _message("top_errors", "No test image was misclassified.",
                        "The most confident mistakes: none, every test image was classified correctly.")
    indices = [int(e["index"]) for e in errors]
    images = _test_images(dataset, indices, "metrics.json top_errors")
    cols = 10
    rows = -(-len(errors) // cols)
    height = 0.42 + rows * 1.02
    fig = _new(height, layout=None)
    fig.text(0.1 / WIDTH, 1 - 0.08 / height, "The most confident mistakes: label → prediction, "
             "and the probability the network gave its prediction", fontsize=9, va="top")
    lines = [[f"{e['label']} → {e['prediction']}", f"p={e['confidence']:.2f}"] for e in errors]
    _gallery(fig, images, cols, lines, left=0.1, top=0.32, width=WIDTH - 0.2, gap=0.1, line_height=0.15)
    worst = errors[0]
    return _finish(fig, "top_errors",
                   f"The {len(errors)} test images the network got wrong with the highest confidence, "
                   f"most confident first; label → prediction above each, e.g. a {worst['label']} read as "
                   f"{worst['prediction']} with p={worst['confidence']:.2f}.",
                   f"{len(errors)} misclassified digits with their labels, predictions and confidences.")


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


# -- all of them ------------------------------------------------------------------------

def make(dataset: Dataset, history: dict, metrics: dict,
         inspection: InspectionLike) -> dict[str, Figure]:
    """Every figure of the report, by name, in the order the report shows them."""
    figures = [
        first_digits(dataset),
        class_counts(dataset),
        network(),
        training_batches(history),
        training_epochs(history),
        confusion(metrics),
        reliability(metrics),
        worst_cases(dataset, metrics),
        top_errors(dataset, metrics),
        kernels_conv1(inspection.kernels["conv1"]),
        kernels_conv2(inspection.kernels["conv2"]),
    ]
    for case in range(len(inspection.indices)):
        figures.append(inside_input(dataset, inspection, case))
        figures.extend(inside_layer(inspection, case, layer) for layer in model.LAYERS)
    return {figure.name: figure for figure in figures}
