"""Every figure of the report, as SVG, from the values the earlier stages hand on.

One module per report section (data, network, training, evaluation, baseline, mistakes,
inside) and one for the site's index (site); style holds what they share. Each figure is a
pure function: values in, `Figure` (name, caption, alt text, SVG bytes) out; the same values
give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from reportgen.data import Dataset, Deferred
from reportgen.layers import LAYERS
from reportgen.report.figures.cache import FigureCache, Job, draw
from reportgen.report.figures.figure import Drawing, Figure
from reportgen.run.comparison import Baseline, Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.history import History
from reportgen.run.inspection import Inspection


def _in(module: str, *names: str) -> tuple[Drawing, ...]:
    return tuple(Drawing(f"{__name__}.{module}", name) for name in names)


# Each figure function named by its module, imported (and matplotlib with it) only when a
# figure must be drawn: a render whose figures all come from the cache imports neither. A
# new figure module is named here the same way, not imported.
(baseline_broken, baseline_classes, baseline_confusion, baseline_fixed, baseline_training) = _in(
    "baseline", "baseline_broken", "baseline_classes", "baseline_confusion", "baseline_fixed", "baseline_training"
)
(class_counts, first_digits) = _in("data", "class_counts", "first_digits")
(confusion, ranking, reliability) = _in("evaluation", "confusion", "ranking", "reliability")
(inside_input, inside_layer, kernels_conv1, kernels_conv2) = _in(
    "inside", "inside_input", "inside_layer", "kernels_conv1", "kernels_conv2"
)
(top_errors, worst_cases) = _in("mistakes", "top_errors", "worst_cases")
# Not named `network` here: importing the module reportgen.report.figures.network, when the
# figure is drawn, sets that name of this package to the module.
(_network,) = _in("network", "network")
(training_batches, training_epochs) = _in("training", "training_batches", "training_epochs")


def __getattr__(name: str) -> Any:
    if name == "tile":  # numpy only, but it lives with the style, which imports matplotlib
        from reportgen.report.figures.style import tile

        return tile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Figure",
    "FigureCache",
    "baseline_broken",
    "baseline_classes",
    "baseline_confusion",
    "baseline_fixed",
    "baseline_training",
    "class_counts",
    "confusion",
    "first_digits",
    "inside_input",
    "inside_layer",
    "kernels_conv1",
    "kernels_conv2",
    "make",
    "ranking",
    "reliability",
    "tile",
    "top_errors",
    "training_batches",
    "training_epochs",
    "worst_cases",
]


def make(
    dataset: Dataset | Deferred,
    history: History,
    evaluation: Evaluation,
    inspection: Inspection,
    pixels: str = "unit",
    baseline: Baseline | None = None,
    comparison: Comparison | None = None,
    processes: int | None = None,
    meanwhile: Callable[[], None] | None = None,
    cache: FigureCache | None = None,
) -> dict[str, Figure]:
    """Every figure of the report, by name, in the order the report shows them; the
    baseline's section only with a baseline and its comparison.

    `pixels`: how the images entered the network ("unit" or "raw"); `processes`: how many
    draw at once (default: one per core, see pool.py); `meanwhile`: what this process does
    while other processes draw; `cache`: where figures drawn before are taken from and this
    drawing's are kept (cache.py), None to draw every one.
    """
    jobs: list[Job] = [
        partial(first_digits, dataset),
        partial(class_counts, dataset),
        _network,
        partial(training_batches, history),
        partial(training_epochs, history),
        partial(confusion, evaluation.confusion_matrix),
        partial(reliability, evaluation.calibration),
        partial(ranking, evaluation.ranking),
    ]
    if baseline is not None and comparison is not None:
        jobs += [
            partial(baseline_classes, comparison),
            partial(baseline_confusion, comparison),
            partial(baseline_fixed, dataset, comparison),
            partial(baseline_broken, dataset, comparison),
            partial(baseline_training, history, baseline.history),
        ]
    jobs += [
        partial(worst_cases, dataset, evaluation.worst_pair),
        partial(top_errors, dataset, evaluation.top_errors),
        partial(kernels_conv1, inspection.kernels["conv1"]),
        partial(kernels_conv2, inspection.kernels["conv2"]),
    ]
    for case in range(len(inspection.indices)):
        jobs.append(partial(inside_input, dataset, inspection, case, pixels))
        jobs.extend(partial(inside_layer, inspection, case, layer) for layer in LAYERS)
    return {figure.name: figure for figure in draw(jobs, processes, meanwhile, cache)}
