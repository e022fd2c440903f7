"""Paired comparison of two classifiers on the same test images: who fixed and who broke
which images, McNemar's exact test, and an interval for the difference in accuracy.

"Baseline" is the earlier model, "current" this run. On each image the two are right or
wrong together or apart, giving the paired 2x2 table

                         baseline right   baseline wrong
        current right    both_right (e)   fixed (f)
        current wrong    broken (g)       both_wrong (h)

and the difference in accuracy, current minus baseline, is (fixed - broken) / n. Only
the discordant images (fixed, broken) carry information about which model is better.

The compare stage: `check_same_test_images` refuses a baseline evaluated on other test
images before any work; `run` turns the two runs' evaluations into a `Comparison`, the
"comparison" entry of metrics.json and the report's section "Against the baseline".

Pure Python and scipy: no mxnet.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from reportgen import data
from reportgen.errors import ReportgenError
from reportgen.runfolder import RunRecord, jsonable

if TYPE_CHECKING:
    from reportgen.evaluate import Evaluation
    from reportgen.history import History

DELTA_KEYS = ("sensitivity", "precision", "f1")
CONFIDENCE = 0.95
WORSE_LEVEL = 0.05  # --fail-if-worse: the one-sided exact McNemar p-value at or below which a run is worse
SHOWN = 20  # fixed and broken images drawn in the report, each
INTERVAL_METHOD = (
    "Newcombe's hybrid score interval for paired proportions (method 10 of Newcombe, Statistics in Medicine 1998)"
)


@dataclass(frozen=True)
class PairedCounts:
    both_right: int
    fixed: int  # baseline wrong, current right
    broken: int  # baseline right, current wrong
    both_wrong: int

    def __post_init__(self) -> None:
        for name in ("both_right", "fixed", "broken", "both_wrong"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a count (a whole number >= 0), not {value!r}")

    @property
    def n(self) -> int:
        return int(self.both_right + self.fixed + self.broken + self.both_wrong)

    def to_json(self) -> dict[str, int]:
        return {
            "both_right": int(self.both_right),
            "fixed": int(self.fixed),
            "broken": int(self.broken),
            "both_wrong": int(self.both_wrong),
            "n": self.n,
        }


def paired_counts(baseline_correct: np.ndarray, current_correct: np.ndarray) -> PairedCounts:
    """The paired 2x2 table from per-image bool arrays (True: that model was right)."""
    baseline = np.asarray(baseline_correct)
    current = np.asarray(current_correct)
    for name, values in (("baseline_correct", baseline), ("current_correct", current)):
        if values.ndim != 1 or values.dtype != np.bool_:
            raise ValueError(f"{name} must be a 1-d bool array, not {values.dtype} {values.shape}")
    if len(baseline) != len(current):
        raise ValueError(f"{len(baseline)} baseline images but {len(current)} current ones")
    return PairedCounts(
        both_right=int(np.sum(baseline & current)),
        fixed=int(np.sum(~baseline & current)),
        broken=int(np.sum(baseline & ~current)),
        both_wrong=int(np.sum(~baseline & ~current)),
    )


# -- McNemar's exact test ----------------------------------------------------------------------


def _check_discordant(fixed: int, broken: int) -> None:
    for name, value in (("fixed", fixed), ("broken", broken)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a count (a whole number >= 0), not {value!r}")


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value: under "both models equally accurate" each discordant
    image is fixed or broken with probability 1/2, so fixed ~ Binomial(fixed + broken, 1/2).

    The p-value of scipy.stats.binomtest(fixed, fixed + broken, 0.5), two-sided, which is
    R's binom.test(fixed, fixed + broken) and, p being 1/2, min(1, 2 P(X <= min(fixed,
    broken))). 1.0 without discordant images.
    """
    from scipy import stats  # a quarter second to import: only where a test is run

    _check_discordant(fixed, broken)
    if fixed + broken == 0:
        return 1.0
    return float(stats.binomtest(int(fixed), int(fixed + broken), 0.5, alternative="two-sided").pvalue)


def mcnemar_exact_worse(fixed: int, broken: int) -> float:
    """One-sided exact McNemar p-value against "this run is worse": P(X >= broken) for
    X ~ Binomial(fixed + broken, 1/2), the chance of breaking at least this many of the
    discordant images if both models were equally accurate.

    It is small only when broken is well above fixed; `--fail-if-worse` fails the run when
    it is at most 0.05 (e.g. 5 broken, 0 fixed gives 1/32; 8 broken against 2 fixed gives
    56/1024 = 0.055, not enough). 1.0 without discordant images.
    """
    from scipy import stats  # a quarter second to import: only where a test is run

    _check_discordant(fixed, broken)
    if fixed + broken == 0:
        return 1.0
    return float(stats.binomtest(int(broken), int(fixed + broken), 0.5, alternative="greater").pvalue)


# -- Newcombe's interval -----------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion, without continuity correction:
    the p with (successes/n - p)^2 <= z^2 p (1 - p) / n, z the two-sided normal quantile."""
    from scipy import stats  # a quarter second to import: only where a test is run

    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, not {successes} of {n}")
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    centre = 2 * successes + z * z
    spread = z * math.sqrt(z * z + 4 * successes * (1 - p))
    return (centre - spread) / (2 * (n + z * z)), (centre + spread) / (2 * (n + z * z))


def _phi(counts: PairedCounts, correct: bool) -> float:
    """The correlation of the two models' right/wrong indicators, phi = (eh - fg) /
    sqrt(margin product); 0 when a margin is empty. Newcombe's method 10 shrinks a positive
    phi: (eh - fg - n/2)^+ / sqrt(margin product)."""
    e, f, g, h = counts.both_right, counts.fixed, counts.broken, counts.both_wrong
    margins = (e + f) * (g + h) * (e + g) * (f + h)  # whole numbers: exact
    if margins == 0:
        return 0.0
    cross = float(e * h - f * g)
    if correct and cross > 0:
        cross = max(cross - counts.n / 2, 0.0)
    return cross / math.sqrt(margins)


def paired_difference_interval(
    counts: PairedCounts, confidence: float = 0.95, phi_correction: bool = True
) -> tuple[float, float, float]:
    """(difference, lower, upper): the accuracy of current minus baseline, (fixed - broken)/n,
    with Newcombe's hybrid score interval for paired proportions.

    Method 10 of R. G. Newcombe, "Improved confidence intervals for the difference between
    binomial proportions based on paired data", Statistics in Medicine 17 (1998) 2635-2650
    (Fagerland, Lydersen and Laake's "Newcombe square-and-add" interval). With p1, p2 the
    two accuracies, (l1, u1), (l2, u2) their Wilson score intervals (no continuity
    correction) and phi their correlation:

        lower = d - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)
        upper = d + sqrt((u1 - p1)^2 - 2 phi (u1 - p1)(p2 - l2) + (p2 - l2)^2)

    phi is (eh - fg) / sqrt((e+f)(g+h)(e+g)(f+h)), 0 if any margin is 0, and method 10
    replaces a positive eh - fg by max(eh - fg - n/2, 0): that is what reproduces
    Newcombe's published method 10 limits (0.0562, 0.3292) for e, f, g, h = 20, 12, 2, 16.
    phi_correction=False keeps the plain phi, which gives his other limits for that table,
    (0.0618, 0.3242). For two ~99%-accurate models on 10,000 images the correction moves
    the limits by about 1e-5. The limits stay within [-1, 1] and around the difference.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    n = counts.n
    if n == 0:
        raise ValueError("no images to compare")
    current_right = counts.both_right + counts.fixed
    baseline_right = counts.both_right + counts.broken
    p1, p2 = current_right / n, baseline_right / n
    l1, u1 = wilson_interval(current_right, n, confidence)
    l2, u2 = wilson_interval(baseline_right, n, confidence)
    phi = _phi(counts, phi_correction)
    difference = (counts.fixed - counts.broken) / n
    below = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    above = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return difference, difference - below, difference + above


# -- per-class changes -------------------------------------------------------------------------


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def per_class_deltas(
    baseline: list[dict[str, Any]], current: list[dict[str, Any]], keys: tuple[str, ...] = DELTA_KEYS
) -> list[dict[str, Any]]:
    """Per class, current minus baseline for each key: [{"class": c, key: delta, ...}].

    Rows are evaluate's by_class rows, matched on "class". A value that is None or NaN on
    either side gives NaN (a class absent from one test set has no sensitivity), without
    a warning.
    """
    before = {row["class"]: row for row in baseline}
    after = {row["class"]: row for row in current}
    if len(before) != len(baseline) or len(after) != len(current):
        raise ValueError("a class appears twice in the per-class rows")
    if sorted(before) != sorted(after):
        raise ValueError(f"baseline classes {sorted(before)} differ from current classes {sorted(after)}")
    deltas = []
    for c in sorted(before):
        row: dict[str, Any] = {"class": c}
        for key in keys:
            old, new = _number(before[c][key]), _number(after[c][key])
            row[key] = math.nan if math.isnan(old) or math.isnan(new) else new - old
        deltas.append(row)
    return deltas


# -- the stage ---------------------------------------------------------------------------------


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
    by_class: tuple[dict[str, Any], ...]  # {"class", "sensitivity", "precision", "f1"}: this run minus the baseline
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
                "by_class": list(self.by_class),
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


def run(baseline: Evaluation, current: Evaluation, source: str) -> Comparison:
    """The paired comparison of two evaluations of the same test images, image by image."""
    before, after = baseline.per_image(), current.per_image()
    if not np.array_equal(before.labels, after.labels):
        raise ReportgenError(f"--baseline {source}: its predictions.npz holds other test labels than this run's")
    was_right = before.predictions == before.labels
    is_right = after.predictions == after.labels
    counts = paired_counts(was_right, is_right)
    difference, lower, upper = paired_difference_interval(counts, CONFIDENCE)
    rows = [baseline.to_json()["by_class"], current.to_json()["by_class"]]
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
        by_class=tuple(per_class_deltas(*rows)),
        confusion_difference=current.confusion_matrix - baseline.confusion_matrix,
        fixed=_changes(np.flatnonzero(~was_right & is_right), baseline, current),
        broken=_changes(np.flatnonzero(was_right & ~is_right), baseline, current),
    )
