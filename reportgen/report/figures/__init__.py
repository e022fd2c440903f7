"""Every figure of the report, as SVG, from the values the earlier stages hand on.

One module per report section (data, network, training, evaluation, baseline, mistakes,
inside; attribution and features for "Why the network got it wrong") and one for the site's
index (site); style holds what they share. Each figure is a
pure function: values in, `Figure` (name, caption, alt text, SVG bytes) out; the same values
give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from reportgen.data import Dataset
from reportgen.layers import LAYERS
from reportgen.report.figures.attribution import attribution_maps, group_text
from reportgen.report.figures.baseline import (
    baseline_broken,
    baseline_classes,
    baseline_confusion,
    baseline_fixed,
    baseline_training,
)
from reportgen.report.figures.data import class_counts, first_digits
from reportgen.report.figures.evaluation import confusion, ranking, reliability
from reportgen.report.figures.features import neighbours, projection
from reportgen.report.figures.inside import inside_input, inside_layer, kernels_conv1, kernels_conv2
from reportgen.report.figures.mistakes import top_errors, worst_cases
from reportgen.report.figures.network import network
from reportgen.report.figures.pool import Job, draw
from reportgen.report.figures.style import Figure, tile
from reportgen.report.figures.training import training_batches, training_epochs
from reportgen.run.comparison import Baseline, Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.explanation import Attributions, Explained, Features
from reportgen.run.history import History
from reportgen.run.inspection import Inspection

__all__ = [
    "Figure",
    "attribution_maps",
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
    "neighbours",
    "network",
    "projection",
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
    pixels: str = "unit",
    baseline: Baseline | None = None,
    comparison: Comparison | None = None,
    processes: int | None = None,
    meanwhile: Callable[[], None] | None = None,
    attributions: Attributions | None = None,
    features: Features | None = None,
) -> dict[str, Figure]:
    """Every figure of the report, by name, in the order the report shows them; the
    baseline's section only with a baseline and its comparison; the explanations only with
    attributions.npz and features.npz (a run made before them has neither).

    `pixels`: how the images entered the network ("unit" or "raw"); `processes`: how many
    draw at once (default: one per core, see pool.py); `meanwhile`: what this process does
    while other processes draw.
    """
    jobs: list[Job] = [
        partial(first_digits, dataset),
        partial(class_counts, dataset),
        network,
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
    if attributions is not None and features is not None:
        explained = Explained.of(inspection.indices.tolist(), evaluation, comparison)
        jobs += explanation_jobs(dataset, evaluation, attributions, features, explained, comparison is not None)
    return {figure.name: figure for figure in draw(jobs, processes, meanwhile)}


def explanation_jobs(
    dataset: Dataset,
    evaluation: Evaluation,
    attributions: Attributions,
    features: Features,
    explained: Explained,
    with_baseline: bool = False,
) -> list[Job]:
    """The section "Why the network got it wrong", in the report's order: one figure of
    attribution maps per group (the broken images only with a baseline), the projection, the
    neighbours. Images of a group that attributions.npz does not hold (a render against a
    baseline the build did not have) are left out: report.explanation says how many."""
    jobs: list[Job] = []
    for group, indices in explained.groups():
        if group == "broken" and not with_baseline:
            continue
        present = [i for i in indices if attributions.has(i)]
        title, what = group_text(group, len(present), evaluation)
        jobs.append(partial(attribution_maps, dataset, attributions, present, f"explain_{group}", title, what))
    labels = evaluation.labels if evaluation.labels is not None else dataset.test_y
    jobs.append(partial(projection, features, labels, evaluation.predictions, explained.inspected, explained.worst))
    jobs.append(partial(neighbours, dataset, features, evaluation.top_errors))
    return jobs
