"""The site's index: each run's test accuracy with its 95% interval, newest at the top."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from matplotlib import ticker

from reportgen import notebook
from reportgen.report.figures.style import BLUE, DARK, GREY, WIDTH, Figure, finish, message, new, styled


class Row(Protocol):
    """What the chart reads of a run: its name and test accuracy with its interval."""

    @property
    def name(self) -> str: ...
    @property
    def accuracy(self) -> float: ...
    @property
    def accuracy_lower(self) -> float: ...
    @property
    def accuracy_upper(self) -> float: ...


# Narrower than a report figure, so that it stays legible scaled down to a phone: the plot
# gets 3.4 inches and the names what they need (about 0.08 inch a character at 10 pt).
PLOT_WIDTH = 3.4  # inches
CHARACTER = 0.08  # inches
LONGEST = 32  # characters of a name; longer ones are cut in the chart (the table has them whole)
ROW_HEIGHT = 0.32  # inches per run
FONT = 10  # points: the names and numbers, a size up from the report's figures for the same reason


def _label(name: str) -> str:
    return name if len(name) <= LONGEST else name[: LONGEST - 1] + "\u2026"


def _limits(rows: Sequence[Row]) -> tuple[float, float]:
    """The accuracies and their intervals with a margin, and the seed's line if it is near."""
    values = [v for r in rows for v in (r.accuracy, r.accuracy_lower, r.accuracy_upper) if math.isfinite(v)]
    low, high = min(values), max(values)
    margin = max(0.08 * (high - low), 0.002)
    low, high = low - margin, high + margin
    if low - 0.25 * (high - low) <= notebook.ACCURACY <= high + 0.25 * (high - low):
        low, high = min(low, notebook.ACCURACY - margin), max(high, notebook.ACCURACY + margin)
    return max(low, 0.0), min(high, 1.0)


@styled
def accuracy_chart(rows: Sequence[Row]) -> Figure:
    """One line per run, in the index's order (newest at the top): a point at its test
    accuracy, a bar over its 95% interval. Each is a <g id> in the SVG ("accuracy-0",
    "interval-0", ... by row), so a test or a script can find it."""
    name, caption = "accuracy", "Test accuracy of each run, newest at the top; the bars are 95% intervals."
    if not rows or not any(math.isfinite(r.accuracy) for r in rows):
        return message(name, "No test accuracy to draw.", caption)
    n = len(rows)
    labels = [_label(r.name) for r in rows]
    fig = new(0.95 + ROW_HEIGHT * n, width=min(WIDTH, PLOT_WIDTH + CHARACTER * max(map(len, labels))))
    ax = fig.subplots()
    for i, r in enumerate(rows):
        if math.isfinite(r.accuracy_lower) and math.isfinite(r.accuracy_upper):
            bar = [r.accuracy_lower, r.accuracy_upper]
            ax.plot(bar, [i, i], "-", marker="|", color=BLUE, lw=1.2, ms=7, gid=f"interval-{i}")
        ax.plot([r.accuracy], [i], "o", color=BLUE, ms=5, gid=f"accuracy-{i}")
    low, high = _limits(rows)
    if low <= notebook.ACCURACY <= high:
        ax.axvline(notebook.ACCURACY, color=GREY, lw=0.8, ls="--", gid="seed")
        ax.annotate(
            f"seed {notebook.ACCURACY:.2%}",
            (notebook.ACCURACY, 1),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
            color=DARK,
        )
    ax.set_xlim(low, high)
    ax.set_ylim(n - 0.5, -0.5)  # the first row at the top, as in the table
    ax.set_yticks(range(n), labels)
    ax.tick_params(axis="y", length=0, labelsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT - 1)
    right = ax.secondary_yaxis("right")  # each run's number beside its line
    right.set_yticks(range(n), [f"{r.accuracy:.2%}" if math.isfinite(r.accuracy) else "NA" for r in rows])
    right.tick_params(length=0, labelsize=FONT)
    right.spines["right"].set_visible(False)
    ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0))
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
    ax.set_xlabel("test accuracy (bar: 95% Clopper-Pearson interval)", fontsize=FONT - 1)
    ax.grid(axis="x", color="#E4E7EB", lw=0.6)
    ax.set_axisbelow(True)
    best = max((r for r in rows if math.isfinite(r.accuracy)), key=lambda r: r.accuracy)
    return finish(
        fig,
        name,
        f"{caption} The highest is {best.name}'s {best.accuracy:.2%}.",
        f"Test accuracy of {n} run{'s' if n != 1 else ''} with 95% intervals, one line per run.",
    )
