"""Paired comparison of two classifiers on the same test images: who fixed and who broke
which images, McNemar's exact test, an interval for the difference in accuracy, and the
per-class changes.

"Baseline" is the earlier model, "current" the later one. On each image the two are right or
wrong together or apart, giving the paired 2x2 table

                         baseline right   baseline wrong
        current right    both_right (e)   fixed (f)
        current wrong    broken (g)       both_wrong (h)

and the difference in accuracy, current minus baseline, is (fixed - broken) / n. Only
the discordant images (fixed, broken) carry information about which model is better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reportgen.stats.caret import ClassStats


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


# -- per-class changes -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassDelta:
    """One digit's change, current minus baseline; NaN where either side is undefined (a
    class absent from the test set has no sensitivity)."""

    digit: int
    sensitivity: float
    precision: float
    f1: float


def per_class_deltas(baseline: Sequence[ClassStats], current: Sequence[ClassStats]) -> tuple[ClassDelta, ...]:
    """Per digit, current minus baseline for sensitivity, precision and F1, in digit order."""
    before = {row.digit: row for row in baseline}
    after = {row.digit: row for row in current}
    if len(before) != len(baseline) or len(after) != len(current):
        raise ValueError("a class appears twice in the per-class rows")
    if sorted(before) != sorted(after):
        raise ValueError(f"baseline classes {sorted(before)} differ from current classes {sorted(after)}")
    return tuple(
        ClassDelta(
            digit=c,
            sensitivity=after[c].sensitivity - before[c].sensitivity,
            precision=after[c].precision - before[c].precision,
            f1=after[c].f1 - before[c].f1,
        )
        for c in sorted(before)
    )
