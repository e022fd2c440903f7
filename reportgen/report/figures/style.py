"""The house style every figure shares: sizes, colours, the Figure value, tiling and galleries.

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
    Their lightness is close (L* 46 and 54: alike in greyscale), so no chart tells them
    apart by colour alone: VERMILION's bars are hatched (HATCH), its lines have their
    own markers, and series of one hue differ by line style or marker.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Rectangle

from reportgen.data import Dataset
from reportgen.errors import RenderError
from reportgen.report.figures.figure import Figure

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
HATCH = "////"  # VERMILION's bars: readable without colour (greyscale, achromatopsia)
# One marker per digit where ten curves share a chart (ranking): their viridis hues are
# ordered but too close to name a digit (CIE76 Delta E 7-13 between neighbours).
DIGIT_MARKERS = ("o", "s", "^", "v", "D", "<", ">", "p", "h", "*")

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


# -- plumbing ---------------------------------------------------------------------------


def styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure function under the house style, restoring matplotlib's state after."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper


def new(height: float, width: float = WIDTH, layout: Literal["constrained"] | None = "constrained") -> MplFigure:
    # A bare Figure, not pyplot's: nothing global keeps it alive once we drop it.
    return MplFigure(figsize=(width, min(height, MAX_HEIGHT)), layout=layout)


def _plain_number(value: float, _position: int | None = None) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def _plain_log_ticks(fig: MplFigure) -> None:
    """Log axes labelled 0.001, 1, 100, 1,000 rather than as powers of ten.

    Plain numbers read at once where the axes count images or give rates; and matplotlib
    typesets every 10^n label through its mathtext parser, a fifth of the drawing time of
    a figure with log axes.
    """
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                axis.set_major_formatter(ticker.FuncFormatter(_plain_number))
                axis.set_minor_formatter(ticker.NullFormatter())


@dataclass
class Held:
    """A figure built but not yet saved (`holding`): its words and size are known, its SVG,
    most of its time, is still to come."""

    fig: MplFigure
    name: str
    caption: str
    alt: str
    rc: dict[str, Any]  # matplotlib's settings when it was finished, which saving reads again


_held: list[Held] | None = None  # set while `holding()` runs


@contextlib.contextmanager
def holding() -> Iterator[list[Held]]:
    """While it runs, `finish` keeps each figure (in the list it yields) and returns it with a
    placeholder SVG of the same size; `save` writes one later. A figure worker builds all its
    figures first, so that the PDF can be laid out from their words and sizes while it saves them."""
    global _held
    outer, _held = _held, []
    try:
        yield _held
    finally:
        _held = outer


def finish(fig: MplFigure, name: str, caption: str, alt: str) -> Figure:
    _plain_log_ticks(fig)
    if _held is None:
        return _saved(fig, name, caption, alt)
    rc = dict(matplotlib.rcParams.copy())
    del rc["backend"]  # as rc_context leaves it: setting it may switch pyplot's backend
    _held.append(Held(fig, name, caption, alt, rc))
    return Figure(name=name, caption=caption, alt=alt, svg=placeholder(fig, name))


def save(held: Held) -> Figure:
    """The Figure `finish` would have returned, had it not been holding: the same bytes."""
    with matplotlib.rc_context(held.rc):
        return _saved(held.fig, held.name, held.caption, held.alt)


def placeholder(fig: MplFigure, name: str) -> bytes:
    """An empty SVG whose width, height and viewBox are what savefig will write (backend_svg
    prints `w * 72` points as %f without trailing zeros), named so that no two are alike."""
    width, height = (f"{x:f}".rstrip("0").rstrip(".") for x in fig.get_size_inches() * 72)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}pt" height="{height}pt" '
        f'viewBox="0 0 {width} {height}"><desc>{name}</desc></svg>'
    ).encode()


def _saved(fig: MplFigure, name: str, caption: str, alt: str) -> Figure:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # no timestamp in the file
    fig.clear()  # free the artists now rather than at the next garbage collection
    return Figure(name=name, caption=caption, alt=alt, svg=buffer.getvalue())


def message(name: str, text: str, caption: str, height: float = 0.8) -> Figure:
    """A figure that says, in words, why there is nothing to draw."""
    fig = new(height, layout=None)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color=DARK)
    return finish(fig, name, caption, text)


def colormap(name: str, bad: str) -> mcolors.Colormap:
    return matplotlib.colormaps[name].with_extremes(bad=bad)


def symmetric(values: np.ndarray) -> mcolors.Normalize:
    """Limits symmetric about 0, so white is exactly zero on the diverging map."""
    limit = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    limit = limit if limit > 0 and math.isfinite(limit) else 1.0
    return mcolors.Normalize(-limit, limit)


TANH = mcolors.Normalize(-1.0, 1.0)


def bare(ax) -> None:
    """An image axes: no frame and no tick marks (the tick labels carry the numbers)."""
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)


def share(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}%}"


def luminance(rgba: Sequence[float]) -> float:
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_images(dataset: Dataset, indices: Sequence[int], source: str) -> np.ndarray:
    chosen = np.asarray(indices, dtype=np.int64)
    bad = chosen[(chosen < 0) | (chosen >= len(dataset.test_x))]
    if bad.size:
        raise RenderError(
            f"{source}: test image {bad[0]} is beyond the {len(dataset.test_x)} "
            "test images loaded (metrics from another data set?)"
        )
    return dataset.test_x[chosen]


# -- tiling -----------------------------------------------------------------------------


def tile(maps: np.ndarray, cols: int, pad: int | tuple[int, int] = 1, fill: float = np.nan) -> np.ndarray:
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
    pad_y, pad_x = (pad, pad) if isinstance(pad, int) else pad
    k, h, w = maps.shape
    rows = -(-k // cols)
    cells = np.full((rows * cols, h + pad_y, w + pad_x), fill, dtype=np.float64)
    cells[:k, :h, :w] = maps
    # (rows, cols, h+py, w+px) -> (rows, h+py, cols, w+px): tiles side by side in each row
    out = cells.reshape(rows, cols, h + pad_y, w + pad_x).transpose(0, 2, 1, 3)
    out = out.reshape(rows * (h + pad_y), cols * (w + pad_x))
    return out[: out.shape[0] - pad_y, : out.shape[1] - pad_x]  # no gap after the last tile


def _factor(width: int, target: int = 600) -> int:
    return max(1, math.ceil(target / max(width, 1)))


def enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    """Repeat each value factor x factor times along the last two axes.

    The SVG asks for crisp pixels, but some viewers smooth small images anyway
    (poppler, behind pdftoppm and many PDF readers, below 4x magnification): with
    each value a block of pixels, smoothing can only soften the blocks' edges.
    """
    return np.repeat(np.repeat(array, factor, axis=-2), factor, axis=-1)


def imshow(ax, array: np.ndarray, target: int = 600, **kwargs: Any):
    """imshow in the array's own coordinates (element centres at integers), enlarged."""
    h, w = array.shape
    return ax.imshow(
        enlarge(array, _factor(max(h, w), target)),
        interpolation="none",
        extent=(-0.5, w - 0.5, h - 0.5, -0.5),
        **kwargs,
    )


def mosaic(
    ax,
    maps: np.ndarray,
    cols: int,
    cmap: mcolors.Colormap,
    norm: mcolors.Normalize,
    noun: str = "map",
    target: int = 600,
):
    """One imshow of the tiled maps; ticks name each tile as row start + column.

    The maps are enlarged before tiling so the gap between them can be the same
    share of a tile (6%) whatever the map size, rather than one whole value wide.
    """
    k, h, w = maps.shape
    factor = _factor(cols * w, target)
    gap = max(1, round(0.06 * min(h, w) * factor))
    image = ax.imshow(tile(enlarge(maps, factor), cols, gap), cmap=cmap, norm=norm, interpolation="none")
    rows = -(-k // cols)
    step_x, step_y = w * factor + gap, h * factor + gap
    ax.set_xticks([c * step_x + (w * factor - 1) / 2 for c in range(cols)], [f"+{c}" for c in range(cols)])
    ax.set_yticks([r * step_y + (h * factor - 1) / 2 for r in range(rows)], [str(r * cols) for r in range(rows)])
    ax.set_xlabel(f"+ column: {noun} number = row start + column")
    ax.set_ylabel(f"first {noun} of the row")
    bare(ax)
    return image


# -- galleries of digits (exact layout in inches, so pixels stay square) ----------------


def gallery(
    fig: MplFigure,
    images: np.ndarray,
    cols: int,
    lines: list[list[str]],
    left: float,
    top: float,
    width: float,
    gap: float,
    line_height: float = 0.15,
    fontsize: float = 8,
):
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
    sheet = tile(images.astype(np.float64), min(cols, n), (pad_y, pad_x))
    sheet = np.vstack([np.full((top_px, sheet.shape[1]), np.nan), sheet])
    h_px, w_px = sheet.shape
    scale = tile_in / 28  # inches per element
    ax = fig.add_axes((left / fig_w, 1 - (top + h_px * scale) / fig_h, w_px * scale / fig_w, h_px * scale / fig_h))
    ax.imshow(
        enlarge(sheet, 3),
        cmap=colormap(DIGITS, PAD_PLAIN),
        vmin=0,
        vmax=255,
        interpolation="none",
        aspect="auto",
        extent=(-0.5, w_px - 0.5, h_px - 0.5, -0.5),
    )
    ax.set_axis_off()
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = c * (28 + pad_x) - 0.5
        y0 = top_px + r * (28 + pad_y) - 0.5
        ax.add_patch(Rectangle((x0, y0), 28, 28, fill=False, lw=0.5, ec="#C8C8C8"))
        ax.text(
            x0 + 14,
            y0 - 0.6,
            "\n".join(lines[i]),
            ha="center",
            va="bottom",
            color=DARK,
            linespacing=1.15,
            fontsize=fontsize,
        )
    return ax, h_px * scale, (pad_x, top_px, pad_y, scale)


def titled_gallery(images: np.ndarray, lines: list[list[str]], title: str, row_height: float) -> MplFigure:
    """Ten digits to a row under a one-line title, each with its text lines above it."""
    height = 0.42 + -(-len(images) // 10) * row_height
    fig = new(height, layout=None)
    fig.text(0.1 / WIDTH, 1 - 0.08 / height, title, fontsize=9, va="top")
    gallery(fig, images, 10, lines, left=0.1, top=0.32, width=WIDTH - 0.2, gap=0.1, line_height=0.15)
    return fig


def confusion_axes(ax, k: int) -> None:
    """A k x k table as caret prints it: rows the predictions, columns the reference on top."""
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("reference (the true label)")
    ax.set_ylabel("prediction")
    bare(ax)


def class_colours(reference: int, prediction: int) -> list[str]:
    """Bar colours over the ten digits: the label blue, a wrong prediction vermilion."""
    colours = [GREY] * 10
    colours[reference] = BLUE
    colours[prediction] = VERMILION if prediction != reference else BLUE
    return colours


def hatch_vermilion(bars, colours: Sequence[str]) -> None:
    """Hatch the vermilion bars (a wrong prediction), so they differ from the label's without colour."""
    for bar, colour in zip(bars, colours):
        if colour == VERMILION:
            bar.set_hatch(HATCH)
            bar.set_edgecolor("white")
            bar.set_linewidth(0)
