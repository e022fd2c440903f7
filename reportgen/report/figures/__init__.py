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
from typing import Any

from reportgen.data import Dataset, Deferred, loaded
from reportgen.layers import LAYERS
from reportgen.report.figures.cache import FigureCache, Job, draw
from reportgen.report.figures.figure import Drawing, Figure
from reportgen.run.comparison import Baseline, Comparison
from reportgen.run.evaluation import Evaluation
from reportgen.run.explanation import Attributions, Explained, Features
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
(attribution_maps,) = _in("attribution", "attribution_maps")
(neighbours, projection) = _in("features", "neighbours", "projection")


def __getattr__(name: str) -> Any:
    if name == "tile":  # numpy only, but it lives with the style, which imports matplotlib
        from reportgen.report.figures.style import tile

        return tile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Figure",
    "FigureCache",
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
    attributions: Attributions | None = None,
    features: Features | None = None,
    early: Callable[[dict[str, Figure], frozenset[str]], None] | None = None,
    saved: Callable[[Figure], None] | None = None,
) -> dict[str, Figure]:
    """Every figure of the report, by name, in the order the report shows them; the
    baseline's section only with a baseline and its comparison; the explanations only with
    attributions.npz and features.npz (a run made before them has neither).

    `pixels`: how the images entered the network ("unit" or "raw"); `processes`: how many
    draw at once (default: one per core, see pool.py); `meanwhile`: what this process does
    while other processes draw; `cache`: where figures drawn before are taken from and this
    drawing's are kept (cache.py), None to draw every one; `early`: called, where other
    processes draw, with every figure by name once their words and sizes are known, those
    still being drawn (whose names it is also given) with a placeholder SVG of their size;
    then `saved` with each of those as it is drawn (pool.py).
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
    if attributions is not None and features is not None:
        explained = Explained.of(inspection.indices.tolist(), evaluation, comparison)
        jobs += explanation_jobs(dataset, evaluation, attributions, features, explained, comparison is not None)

    def by_name(figures: list[Figure], pending: frozenset[str]) -> None:
        assert early is not None
        early({figure.name: figure for figure in figures}, pending)

    drawn = draw(jobs, processes, meanwhile, cache, by_name if early is not None else None, saved)
    return {figure.name: figure for figure in drawn}


def explanation_jobs(
    dataset: Dataset | Deferred,
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
    labels = evaluation.labels if evaluation.labels is not None else loaded(dataset).test_y
    jobs.append(partial(projection, features, labels, evaluation.predictions, explained.inspected, explained.worst))
    jobs.append(partial(neighbours, dataset, features, evaluation.top_errors))
    return jobs


def group_text(group: str, count: int, evaluation: Evaluation) -> tuple[str, str]:
    """(title, the images in a caption's words) of a group of Explained. Here, not beside the
    drawing, so that naming a cached figure's title imports no matplotlib."""
    pair = evaluation.worst_pair
    plural = "" if count == 1 else "s"
    return {
        "inspected": (f"The inspected digit{plural}", f"inspected digit{plural}"),
        "worst": (
            f"The worst pair (labelled {pair.reference}, predicted {pair.prediction})",
            f"image{plural} of the worst pair shown above",
        ),
        "mistakes": ("The most confident mistakes", f"most confident mistake{plural}"),
        "broken": ("The images this run broke", f"image{plural} this run broke (the baseline got them right)"),
    }[group]
