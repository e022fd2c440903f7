"""Section 3, Network: the diagram of the eleven layers."""

from __future__ import annotations

from matplotlib import colors as mcolors
from matplotlib.patches import FancyBboxPatch, Rectangle

from reportgen import layers
from reportgen.report.figures.style import BLUE, DARK, WIDTH, Figure, finish, new, styled

# -- network ----------------------------------------------------------------------------


def _arrows(ax, centres: list[tuple[float, float]], box_w: float, box_h: float, row_gap: float) -> None:
    """Each box to the next: along a row, or down and back to the next row's first box."""
    arrow = dict(arrowstyle="-|>", color=DARK, lw=0.8, mutation_scale=8, shrinkA=0, shrinkB=0)
    for (x0, t0), (x1, t1) in zip(centres, centres[1:]):
        if t0 == t1:  # same row: left to right
            ax.annotate(
                "", xy=(x1 - box_w / 2, t1 - box_h / 2), xytext=(x0 + box_w / 2, t0 - box_h / 2), arrowprops=arrow
            )
        else:  # down from the row's last box, back along the gap, into the next row's first
            mid = t0 - box_h - row_gap / 2
            ax.plot([x0, x0, x1], [t0 - box_h, mid, mid], color=DARK, lw=0.8, solid_joinstyle="miter")
            ax.annotate("", xy=(x1, t1), xytext=(x1, mid), arrowprops=arrow)


@styled
def network() -> Figure:
    counts = layers.parameter_counts()
    boxes: list[tuple[str, list[str], tuple[int, ...], int]] = [("data", ["input image"], (1, 28, 28), 0)]
    boxes += [(layer, layers.KINDS[layer].split(", "), layers.SHAPES[layer], counts[layer]) for layer in layers.LAYERS]
    cols, box_w, box_h, row_gap, margin = 4, 1.38, 0.86, 0.42, 0.08
    rows = -(-len(boxes) // cols)
    slot = (WIDTH - 2 * margin) / cols
    height = rows * box_h + (rows - 1) * row_gap + 2 * margin + 0.22
    fig = new(height, layout=None)
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
        ax.add_patch(
            FancyBboxPatch(
                (cx - box_w / 2, top - box_h),
                box_w,
                box_h,
                boxstyle="round,pad=0,rounding_size=0.06",
                lw=0.8,
                ec=DARK,
                fc=mcolors.to_rgba(BLUE, 0.13) if learned else "white",
            )
        )
        text = [name, *kind, "output " + layers.format_shape(shape)]
        ax.text(cx, top - 0.07, name, ha="center", va="top", fontsize=9, fontweight="bold")
        detail = "\n".join(text[1:]) + (f"\n{params:,} weights" if learned else "")
        ax.text(cx, top - 0.25, detail, ha="center", va="top", fontsize=8, linespacing=1.2, color=DARK)
    _arrows(ax, centres, box_w, box_h, row_gap)
    ax.add_patch(Rectangle((margin, 0.06), 0.22, 0.11, fc=mcolors.to_rgba(BLUE, 0.13), ec=DARK, lw=0.6))
    total = sum(counts.values())
    ax.text(
        margin + 0.3,
        0.115,
        f"shaded: layers with learned weights ({total:,} in all); shapes are channels × height × width per image",
        va="center",
        fontsize=8,
        color=DARK,
    )
    return finish(
        fig,
        "network",
        "The seed's LeNet, read left to right and row by row: each box names a layer, "
        "what it does and the shape of its output for one 28 × 28 digit.",
        "Diagram of the network: data, conv1, act1, pool1, conv2, act2, pool2, flat, "
        "full1, act3, full2, softm, with output shapes.",
    )
