"""The compare stage: this run against its baseline on the same test images.

`check_same_test_images` refuses a baseline evaluated on other test images before any work;
`compare` turns the two runs' evaluations into a `Comparison` (stats.paired's counts, tests
and interval), the "comparison" entry of metrics.json and the report's section "Against the
baseline".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from reportgen import data
from reportgen.errors import ReportgenError
from reportgen.run.files import jsonable
from reportgen.run.record import RunRecord
from reportgen.stats.paired import (
    ClassDelta,
    PairedCounts,
    mcnemar_exact,
    mcnemar_exact_worse,
    paired_counts,
    paired_difference_interval,
    per_class_deltas,
)

if TYPE_CHECKING:
    from reportgen.run.evaluation import Evaluation
    from reportgen.run.history import History

CONFIDENCE = 0.95
WORSE_LEVEL = 0.05  # --fail-if-worse: the one-sided exact McNemar p-value at or below which a run is worse
SHOWN = 20  # fixed and broken images drawn in the report, each
INTERVAL_METHOD = (
    "Newcombe's hybrid score interval for paired proportions (method 10 of Newcombe, Statistics in Medicine 1998)"
)


def _test_files(files: dict[str, str]) -> dict[str, str]:
    """The test images' and labels' entries of a run's data checksums, by file name."""
    names = {name for role in ("test_images", "test_labels") for name in data.FILES[role]}
    return {name: digest for name, digest in files.items() if name.removesuffix(".gz") in names}


def check_same_test_images(baseline: data.DataRecord, current: data.DataRecord, source: str) -> None:
    """Refuse a baseline whose test images are not this run's: other test files (by SHA-256)
    or another number of them (--test-limit). The training data may differ: that is often
    the change under review. `source` is --baseline as the user typed it."""
    theirs, ours = _test_files(baseline.files), _test_files(current.files)
    if sorted(theirs.values()) != sorted(ours.values()):  # by content: the seed's file names are fine
        shown = [f"{name} {digest[:12]}" for name, digest in sorted(theirs.items())]
        here = [f"{name} {digest[:12]}" for name, digest in sorted(ours.items())]
        raise ReportgenError(
            f"--baseline {source}: evaluated on other test files ({', '.join(shown) or 'none recorded'}; "
            f"this run: {', '.join(here)}); a paired comparison needs the same test images: "
            f"give the baseline's data with --data-dir"
        )
    if baseline.test_images != current.test_images:
        limit = (
            f"--test-limit {baseline.test_images}" if baseline.test_images < baseline.test_total else "no --test-limit"
        )
        raise ReportgenError(
            f"--baseline {source}: evaluated on {baseline.test_images:,} test images, this run on "
            f"{current.test_images:,}; give {limit}, as the baseline had"
        )


@dataclass(frozen=True, eq=False)
class Baseline:
    """The run a change is judged against: its record, its history and its evaluation,
    scored afresh from its per-image predictions with this version's statistics."""

    source: str  # --baseline as the user typed it
    record: RunRecord
    history: History | None  # None: the baseline folder kept no history.json
    evaluation: Evaluation  # with its per-image arrays
    predicted_afresh: bool  # True: no predictions.npz, its model was run on the test images


@dataclass(frozen=True)
class Scores:
    """One run's headline numbers, as the comparison sets them side by side."""

    accuracy: float
    kappa: float
    log_loss: float
    ece: float

    @classmethod
    def of(cls, evaluation: Evaluation) -> Scores:
        o = evaluation.overall
        return cls(o.accuracy, o.kappa, o.log_loss, evaluation.calibration.ece)


@dataclass(frozen=True)
class Change:
    """A test image one run got right and the other wrong."""

    index: int  # in the test set
    label: int
    baseline_prediction: int
    prediction: int  # this run's
    baseline_confidence: float  # each run's probability for its own prediction
    confidence: float


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make field-wise == ambiguous
class Comparison:
    baseline: str  # --baseline as given
    counts: PairedCounts
    current: Scores
    previous: Scores  # the baseline's
    accuracy_difference: float  # this run minus the baseline, (fixed - broken) / n
    accuracy_difference_lower: float  # CONFIDENCE interval, INTERVAL_METHOD
    accuracy_difference_upper: float
    mcnemar_exact_p_value: float  # two-sided: are the two accuracies different?
    mcnemar_exact_worse_p_value: float  # one-sided: is this run worse? (--fail-if-worse)
    by_class: tuple[ClassDelta, ...]  # per digit, this run minus the baseline
    confusion_difference: np.ndarray  # (10, 10) int64, this run's table minus the baseline's
    fixed: tuple[Change, ...]  # every fixed image, in test-set order
    broken: tuple[Change, ...]

    def to_json(self) -> dict[str, Any]:
        """metrics.json's "comparison"; NaN written as null."""
        return jsonable(
            {
                "baseline": self.baseline,
                "n": self.counts.n,
                "baseline_accuracy": self.previous.accuracy,
                "accuracy": self.current.accuracy,
                "accuracy_difference": self.accuracy_difference,
                "accuracy_difference_lower": self.accuracy_difference_lower,
                "accuracy_difference_upper": self.accuracy_difference_upper,
                "confidence": CONFIDENCE,
                "interval_method": INTERVAL_METHOD,
                **self.counts.to_json(),
                "mcnemar_exact_p_value": self.mcnemar_exact_p_value,
                "mcnemar_exact_worse_p_value": self.mcnemar_exact_worse_p_value,
                "baseline_scores": asdict(self.previous),
                "scores": asdict(self.current),
                "by_class": [
                    {"class": d.digit, "sensitivity": d.sensitivity, "precision": d.precision, "f1": d.f1}
                    for d in self.by_class
                ],
                "confusion_difference": self.confusion_difference,
                "fixed_indices": [c.index for c in self.fixed],
                "broken_indices": [c.index for c in self.broken],
            }
        )


def _changes(indices: np.ndarray, before: Evaluation, after: Evaluation) -> tuple[Change, ...]:
    assert before.probabilities is not None and after.probabilities is not None
    assert before.predictions is not None and after.predictions is not None and after.labels is not None
    rows = []
    for i in indices.tolist():
        old, new = int(before.predictions[i]), int(after.predictions[i])
        rows.append(
            Change(
                index=i,
                label=int(after.labels[i]),
                baseline_prediction=old,
                prediction=new,
                baseline_confidence=float(before.probabilities[i, old]),
                confidence=float(after.probabilities[i, new]),
            )
        )
    return tuple(rows)


def compare(baseline: Evaluation, current: Evaluation, source: str) -> Comparison:
    """The paired comparison of two evaluations of the same test images, image by image."""
    before, after = baseline.per_image(), current.per_image()
    if not np.array_equal(before.labels, after.labels):
        raise ReportgenError(f"--baseline {source}: its predictions.npz holds other test labels than this run's")
    was_right = before.predictions == before.labels
    is_right = after.predictions == after.labels
    counts = paired_counts(was_right, is_right)
    difference, lower, upper = paired_difference_interval(counts, CONFIDENCE)
    return Comparison(
        baseline=source,
        counts=counts,
        current=Scores.of(current),
        previous=Scores.of(baseline),
        accuracy_difference=difference,
        accuracy_difference_lower=lower,
        accuracy_difference_upper=upper,
        mcnemar_exact_p_value=mcnemar_exact(counts.fixed, counts.broken),
        mcnemar_exact_worse_p_value=mcnemar_exact_worse(counts.fixed, counts.broken),
        by_class=per_class_deltas(baseline.by_class, current.by_class),
        confusion_difference=current.confusion_matrix - baseline.confusion_matrix,
        fixed=_changes(np.flatnonzero(~was_right & is_right), baseline, current),
        broken=_changes(np.flatnonzero(was_right & ~is_right), baseline, current),
    )
