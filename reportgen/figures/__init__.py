"""Stage 5: every figure of the report, as SVG, from the values the earlier stages hand on.

One module per report section (data, network, training, evaluation, baseline, mistakes,
inside); _style holds what they share. Each figure is a pure function: values in, `Figure`
(name, caption, alt text, SVG bytes) out; the same values give the same bytes.
"""

from __future__ import annotations

from reportgen.compare import Baseline, Comparison
from reportgen.data import Dataset
from reportgen.evaluate import Evaluation
from reportgen.figures._style import Figure, tile
from reportgen.figures.baseline import (
    baseline_broken,
    baseline_classes,
    baseline_confusion,
    baseline_fixed,
    baseline_training,
)
from reportgen.figures.data import class_counts, first_digits
from reportgen.figures.evaluation import confusion, ranking, reliability
from reportgen.figures.inside import inside_input, inside_layer, kernels_conv1, kernels_conv2
from reportgen.figures.mistakes import top_errors, worst_cases
from reportgen.figures.network import network
from reportgen.figures.training import training_batches, training_epochs
from reportgen.history import History
from reportgen.inspection import Inspection
from reportgen.layers import LAYERS

__all__ = [
    "Figure",
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
    "network",
    "ranking",
    "reliability",
    "tile",
    "top_errors",
    "training_batches",
    "training_epochs",
    "worst_cases",
]


def make(
    dataset: Dataset,
    history: History,
    evaluation: Evaluation,
    inspection: Inspection,
    baseline: Baseline | None = None,
    comparison: Comparison | None = None,
) -> dict[str, Figure]:
    """Every figure of the report, by name, in the order the report shows them; the
    baseline's section only with a baseline and its comparison."""
    figures = [
        first_digits(dataset),
        class_counts(dataset),
        network(),
        training_batches(history),
        training_epochs(history),
        confusion(evaluation.confusion_matrix),
        reliability(evaluation.calibration),
        ranking(evaluation.ranking),
    ]
    if baseline is not None and comparison is not None:
        figures += [
            baseline_classes(comparison),
            baseline_confusion(comparison),
            baseline_fixed(dataset, comparison),
            baseline_broken(dataset, comparison),
            baseline_training(history, baseline.history),
        ]
    figures += [
        worst_cases(dataset, evaluation.worst_pair),
        top_errors(dataset, evaluation.top_errors),
        kernels_conv1(inspection.kernels["conv1"]),
        kernels_conv2(inspection.kernels["conv2"]),
    ]
    for case in range(len(inspection.indices)):
        figures.append(inside_input(dataset, inspection, case))
        figures.extend(inside_layer(inspection, case, layer) for layer in LAYERS)
    return {figure.name: figure for figure in figures}
