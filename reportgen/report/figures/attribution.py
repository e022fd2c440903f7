"""Section "Why the network got it wrong", which pixels decided: for each group of explained
digits, the digit over its integrated gradients and its occlusion map.

Drawn from attributions.npz (run.explanation) and the test images: no MXNet. The maps use the
house diverging scale (style.DIVERGING, ColorBrewer's RdBu: its red and blue stay apart with
the common colour-vision deficiencies), symmetric about 0, so white is exactly no effect.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.patches import Rectangle

from reportgen.data import Dataset
from reportgen.errors import RenderError
from reportgen.report.figures.style import (
    DARK,
    DIGITS,
    DIVERGING,
    PAD_PLAIN,
    PAD_SIGNED,
    WIDTH,
    Figure,
    colormap,
    enlarge,
    finish,
    message,
    new,
    styled,
    test_images,
    tile,
)
from reportgen.run.explanation import SIDE, STEPS, TOLERANCE, Attributions

PER_ROW = 10  # cases in a row of attribution maps, all on one colour scale
IG_PERCENTILE = 99.0  # integrated gradients' colour scale ends at this percentile of a row's non-zero |values|


def occlusion_on_pixels(occlusion: np.ndarray, window: int, stride: int, side: int = SIDE) -> np.ndarray:
    """(n, H', W') window values -> (n, side, side): each value on the stride x stride pixels at
    the centre of its window; pixels at the centre of no window (the outer rim) are NaN."""
    occlusion = np.asarray(occlusion, np.float64)
    n, rows, cols = occlusion.shape
    out = np.full((n, side, side), np.nan)
    offset = (window - stride) // 2
    block = min(stride, window)
    for r in range(rows):
        for c in range(cols):
            y, x = r * stride + offset, c * stride + offset
            out[:, y : y + block, x : x + block] = occlusion[:, r, c, None, None]
    return out


def _limit(values: np.ndarray, percentile: float | None = None) -> float:
    """The colour scale's half-width: the largest |value|, or the given percentile of the
    non-zero |values| (integrated gradients are 0 off the ink, and a few pixels far above the
    rest would wash every other one out to white)."""
    magnitudes = np.abs(values[np.isfinite(values)])
    magnitudes = magnitudes[magnitudes > 0]
    if not magnitudes.size:
        return 1.0
    limit = float(np.percentile(magnitudes, percentile)) if percentile is not None else float(magnitudes.max())
    return limit if limit > 0 else 1.0


def _case_lines(attributions: Attributions, i: int) -> list[str]:
    target, versus = int(attributions.targets[i]), int(attributions.versus[i])
    verdict = f"{versus} → {target}" if versus >= 0 else f"{target}, right"
    return [f"#{int(attributions.indices[i])}", verdict]


def _scale_bar(fig, image, box: tuple[float, float, float, float], clipped: bool) -> None:
    cax = fig.add_axes(box)
    bar = fig.colorbar(image, cax=cax, extend="both" if clipped else "neither")
    bar.ax.tick_params(labelsize=6.5, length=2, pad=1)
    bar.ax.yaxis.set_major_locator(ticker.MaxNLocator(3, symmetric=True))


@styled
def attribution_maps(
    dataset: Dataset, attributions: Attributions, indices: Sequence[int], name: str, title: str, what: str
) -> Figure:
    """The digits of `indices` (test-set indices, all in `attributions`), each over its integrated
    gradients and its occlusion map, PER_ROW to a row (half as many, larger, for a small group);
    each row of cases shares one colour scale per method, symmetric about 0. `what` names the
    images in the caption ("confident mistakes")."""
    indices = [int(i) for i in indices]
    if not indices:
        return message(name, f"No {what} to explain.", f"{title}: none.")
    try:
        rows_of = [attributions.position(i) for i in indices]
    except KeyError as e:
        raise RenderError(
            f"attributions.npz: no attributions for test image {e.args[0]} (files of different runs?)"
        ) from None
    digits = test_images(dataset, indices, "attributions.npz").astype(np.float64)
    ig = attributions.integrated_gradients[rows_of].astype(np.float64)
    occ = occlusion_on_pixels(
        attributions.occlusion[rows_of], attributions.occlusion_window, attributions.occlusion_stride
    )
    n = len(indices)
    # Ten to a row on the page's width; a group of five or fewer (the inspected digits, say) at
    # five to a row, twice the size: ten-to-a-row tiles (1.2 cm) leave a lone digit's maps hard
    # to read and the rest of the width empty.
    per_row = PER_ROW if n > PER_ROW // 2 else PER_ROW // 2
    bands = -(-n // per_row)
    left, right, gap, lines_h, band_gap, title_h = 1.05, 0.5, 0.05, 0.3, 0.22, 0.3
    tile_in = (WIDTH - left - right - (per_row - 1) * gap) / per_row
    per_in = SIDE / tile_in
    pad = max(1, round(gap * per_in))
    width = WIDTH
    band_h = lines_h + 3 * tile_in + 2 * gap
    height = title_h + bands * band_h + (bands - 1) * band_gap + 0.05
    fig = new(height, width=width, layout=None)
    fig.text(
        0.1 / width, 1 - 0.06 / height, f"Which pixels decided: {title[0].lower()}{title[1:]}", fontsize=9, va="top"
    )
    diverging = colormap(DIVERGING, PAD_SIGNED)
    labels = (
        "digit",
        "integrated\ngradients\n(logit per pixel)",
        f"occlusion {attributions.occlusion_window}×{attributions.occlusion_window},\n"
        f"stride {attributions.occlusion_stride}\n(logit drop)",
    )
    for b in range(bands):
        part = slice(b * per_row, min(n, (b + 1) * per_row))
        k = part.stop - part.start
        top = title_h + b * (band_h + band_gap) + lines_h
        width_in = (k * SIDE + (k - 1) * pad) / per_in
        contour = tile(digits[part], k, pad, fill=0.0)
        for row, maps in enumerate((digits[part], ig[part], occ[part])):
            y = top + row * (tile_in + gap)
            ax = fig.add_axes((left / width, 1 - (y + tile_in) / height, width_in / width, tile_in / height))
            mosaic = tile(maps, k, pad)
            extent = (-0.5, mosaic.shape[1] - 0.5, mosaic.shape[0] - 0.5, -0.5)
            if row == 0:
                ax.imshow(
                    enlarge(mosaic, 4),
                    cmap=colormap(DIGITS, PAD_PLAIN),
                    vmin=0,
                    vmax=255,
                    interpolation="none",
                    extent=extent,
                    aspect="auto",
                )
                for j, i in enumerate(range(part.start, part.stop)):
                    x0 = j * (SIDE + pad) - 0.5
                    ax.add_patch(Rectangle((x0, -0.5), SIDE, SIDE, fill=False, lw=0.5, ec="#C8C8C8"))
                    ax.text(
                        x0 + SIDE / 2,
                        -1.2,
                        "\n".join(_case_lines(attributions, rows_of[i])),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        color=DARK,
                        linespacing=1.1,
                        clip_on=False,
                    )
            else:
                clipped = row == 1
                limit = _limit(maps, IG_PERCENTILE if clipped else None)
                image = ax.imshow(
                    enlarge(mosaic, 4),
                    cmap=diverging,
                    norm=mcolors.Normalize(-limit, limit),
                    interpolation="none",
                    extent=extent,
                    aspect="auto",
                )
                # The digit's outline (half ink) over the map, so each value is seen on its stroke.
                ax.contour(contour, levels=[127.5], colors=[DARK], linewidths=0.35, alpha=0.6)
                ax.set_xlim(extent[0], extent[1])
                ax.set_ylim(extent[2], extent[3])
                box = ((left + width_in + 0.06) / width, 1 - (y + tile_in) / height, 0.07 / width, tile_in / height)
                _scale_bar(fig, image, box, clipped)
            ax.set_axis_off()
            fig.text(0.1 / width, 1 - (y + tile_in / 2) / height, labels[row], fontsize=7, va="center", color=DARK)
    completeness = attributions.completeness[rows_of]
    steps = attributions.steps[rows_of]
    failed = int((~attributions.complete[rows_of]).sum())
    complete = (
        f"Each digit's attributions sum to its score difference F(image) − F(black) within "
        f"{completeness.max():.2%} (worst of the {n}; {int(steps.min())}"
        f"{'' if steps.min() == steps.max() else f'-{int(steps.max())}'} steps)"
        if not failed
        else f"{failed} of the {n} digits' attributions miss their score difference F(image) − F(black) "
        f"by more than {TOLERANCE:.0%} (up to {completeness.max():.1%}): those maps do not account for "
        "the whole difference"
    )
    w, s = attributions.occlusion_window, attributions.occlusion_stride
    images = what if n == 1 else f"{n} {what}"
    return finish(
        fig,
        name,
        f"Why the network answered as it did on the {images}: integrated gradients (Sundararajan et al. "
        f"2017, {STEPS} or more steps from a black image) and occlusion (Zeiler and Fergus 2014) of the score "
        "difference that decides each case, full2's score of the prediction minus that of the label for a "
        "mistake (label → prediction above the digit), the prediction's score alone for a right answer. "
        "Red pushes towards the prediction and blue away from it (towards the label, for a mistake); in "
        "the occlusion maps red means that blacking the window out lowers the difference. Each row of cases "
        f"has one colour scale per method, centred on 0 (for integrated gradients it ends at the "
        f"{IG_PERCENTILE:.0f}th percentile of the row's non-zero |values|, the arrows on its bar), and the "
        "digit's outline is drawn over the maps. "
        f"{complete}. The baseline is black, so black pixels get zero attribution by construction: "
        f"neither method can show that ink missing from the digit mattered. Occlusion sets a {w} × {w} "
        f"window to black, moved {s} pixels at a time, and draws the drop at the window's centre; it "
        "measures only what removing ink does, one window at a time.",
        f"{n} digits, each with a red and blue map of integrated gradients and one of occlusion "
        "showing which pixels pushed the network towards its answer.",
    )
