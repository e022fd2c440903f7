"""compare.py against independent references: binomial tails summed in exact fractions,
R's printed binom.test and mcnemar.test output, published Wilson and Newcombe intervals,
closed forms for the edge cases, and a second implementation of Newcombe's interval
written another way (Wilson limits as roots of the score equation, phi as a Pearson
correlation of the expanded per-image indicators).

Nothing is compared with this code's own earlier output.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import optimize, stats

from reportgen.run.comparison import check_same_test_images, compare
from reportgen.stats import paired
from reportgen.stats.caret import ClassStats
from reportgen.stats.paired import PairedCounts

Z95 = 1.959963984540054  # qnorm(0.975)


def binomial_pmf_half(k: int, n: int) -> Fraction:
    return Fraction(math.comb(n, k), 2**n)


def upper_tail(x: int, n: int) -> Fraction:
    """P(X >= x), X ~ Binomial(n, 1/2), exactly."""
    return sum((binomial_pmf_half(i, n) for i in range(x, n + 1)), Fraction(0))


def two_sided(x: int, n: int) -> Fraction:
    """R's binom.test(x, n, 0.5)$p.value: the probability of outcomes no likelier than x;
    with p = 1/2 that is both tails from min(x, n - x) outward, at most 1."""
    small = min(x, n - x)
    return min(Fraction(1), 2 * upper_tail(n - small, n))


def as_printed(actual: float, text: str) -> bool:
    """Whether `actual` rounds to `text` at its last printed digit."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(actual - float(text)) <= 0.5 * 10.0**-decimals * (1 + 1e-9)


# -- the table ---------------------------------------------------------------------------------


def test_paired_counts_by_hand() -> None:
    baseline = np.array([True, True, False, False, True, True, False])
    current = np.array([True, False, True, False, True, False, True])
    counts = paired.paired_counts(baseline, current)
    # image by image: both, broken, fixed, neither, both, broken, fixed
    assert counts == PairedCounts(both_right=2, fixed=2, broken=2, both_wrong=1)
    assert counts.n == 7
    assert counts.to_json() == {"both_right": 2, "fixed": 2, "broken": 2, "both_wrong": 1, "n": 7}
    assert paired.paired_counts(np.zeros(0, bool), np.zeros(0, bool)).n == 0


def test_paired_counts_refuses_what_is_not_two_equal_bool_arrays() -> None:
    with pytest.raises(ValueError, match="bool"):
        paired.paired_counts(np.array([1, 0]), np.array([True, False]))
    with pytest.raises(ValueError, match="3 baseline images but 2"):
        paired.paired_counts(np.ones(3, bool), np.ones(2, bool))
    with pytest.raises(ValueError, match="count"):
        PairedCounts(both_right=-1, fixed=0, broken=0, both_wrong=0)
    with pytest.raises(ValueError, match="count"):
        PairedCounts(both_right=1.5, fixed=0, broken=0, both_wrong=0)


# -- McNemar's exact test ----------------------------------------------------------------------


def test_mcnemar_exact_as_r_prints_binom_test() -> None:
    # R: binom.test(2, 12)$p.value  [1] 0.03857422  ;  by hand 2 (1 + 12 + 66) / 4096
    for fixed, broken in ((2, 10), (10, 2)):
        p = paired.mcnemar_exact(fixed, broken)
        assert as_printed(p, "0.03857422")
        assert p == pytest.approx(2 * (1 + 12 + 66) / 4096, rel=1e-13)
    # R: binom.test(6, 12)$p.value  [1] 1  (the observed count is the most likely one)
    assert paired.mcnemar_exact(6, 6) == pytest.approx(1.0, rel=1e-13)
    assert paired.mcnemar_exact(0, 0) == 1.0
    assert paired.mcnemar_exact(0, 1) == 1.0  # a single discordant image says nothing
    assert paired.mcnemar_exact(0, 5) == pytest.approx(2 / 32, rel=1e-13)


def test_mcnemar_exact_equals_exact_fraction_sums() -> None:
    for discordant in range(1, 41):
        for fixed in range(discordant + 1):
            broken = discordant - fixed
            want = float(two_sided(fixed, discordant))
            assert paired.mcnemar_exact(fixed, broken) == pytest.approx(want, rel=1e-12), (fixed, broken)


def test_mcnemar_exact_is_near_rs_corrected_chi_square_for_many_discordant_pairs() -> None:
    # Context, Agresti's approval table: R's mcnemar.test(matrix(c(794, 86, 150, 570), 2))
    # prints p-value = 4.115e-05 (continuity corrected, the default); with 236 discordant
    # pairs the exact test should agree closely. The exact value comes from fractions.
    p = paired.mcnemar_exact(86, 150)
    assert p == pytest.approx(float(two_sided(86, 236)), rel=1e-12)
    assert 0.85 < p / 4.115e-05 < 1.0


def test_mcnemar_exact_worse_equals_the_upper_tail() -> None:
    for discordant in range(1, 41):
        for broken in range(discordant + 1):
            fixed = discordant - broken
            want = float(upper_tail(broken, discordant))
            assert paired.mcnemar_exact_worse(fixed, broken) == pytest.approx(want, rel=1e-12)
            if broken > fixed:  # the two-sided p doubles the one-sided tail (p = 1/2 is symmetric)
                assert paired.mcnemar_exact(fixed, broken) == pytest.approx(min(1.0, 2 * want), rel=1e-12)
    assert paired.mcnemar_exact_worse(0, 0) == 1.0
    assert paired.mcnemar_exact_worse(7, 0) == 1.0  # P(X >= 0)
    assert paired.mcnemar_exact_worse(0, 7) == pytest.approx(1 / 128, rel=1e-13)


def test_the_worse_gate_at_five_percent() -> None:
    # Hand: 5 broken, 0 fixed: 1/32 = 0.031 fails the gate; 4 and 0: 1/16 = 0.0625 passes;
    # 8 broken against 1 fixed: (1 + 9)/512 = 0.0195 fails; against 2: 56/1024 = 0.0547 passes.
    assert paired.mcnemar_exact_worse(0, 5) <= 0.05 < paired.mcnemar_exact_worse(0, 4)
    assert paired.mcnemar_exact_worse(1, 8) <= 0.05 < paired.mcnemar_exact_worse(2, 8)
    for discordant in range(1, 61):
        # the fewest broken images that fail the gate, from the exact tail
        needed = min((b for b in range(discordant + 1) if upper_tail(b, discordant) <= Fraction(1, 20)), default=None)
        for broken in range(discordant + 1):
            fails = paired.mcnemar_exact_worse(discordant - broken, broken) <= 0.05
            assert fails == (needed is not None and broken >= needed), (discordant, broken)
            if broken <= discordant - broken:
                assert not fails  # never when this run broke no more than it fixed
    # with few discordant images, nothing can fail it
    assert all(paired.mcnemar_exact_worse(0, b) > 0.05 for b in range(5))


def test_mcnemar_refuses_negative_counts() -> None:
    with pytest.raises(ValueError):
        paired.mcnemar_exact(-1, 3)
    with pytest.raises(ValueError):
        paired.mcnemar_exact_worse(2, True)


# -- Wilson and Newcombe -----------------------------------------------------------------------


def test_wilson_interval_as_newcombe_published() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat Med
    # 17:857-872, examples as quoted in ratesci's tests/testthat/test3.R (tests against
    # published examples): 15/148, 0/20, 1/29.
    for (x, n), (low, high) in {
        (15, 148): ("0.0624", "0.1605"),
        (0, 20): ("0", "0.1611"),
        (1, 29): ("0.0061", "0.1718"),
    }.items():
        lower, upper = paired.wilson_interval(x, n)
        assert as_printed(lower, low) and as_printed(upper, high), (x, n, lower, upper)


# (e, f, g, h) = (both right, fixed, broken, both wrong); current = Newcombe's "test 1".
PUBLISHED = [
    # Newcombe (1998) Stat Med 17:2635, his example, as quoted in ratesci's test3.R:
    # "against Newcombe's method 10 result", and his method 8 (phi not corrected).
    ((20, 12, 2, 16), True, ("0.0562", "0.3292")),
    ((20, 12, 2, 16), False, ("0.0618", "0.3242")),
    # Fagerland, Lydersen and Laake (2014) Stat Med 33:2850, airway hyper-responsiveness
    # (Bentur et al. 2009), Newcombe square-and-add, as quoted in ratesci's test3.R.
    ((1, 1, 7, 12), True, ("-0.507", "-0.026")),
    # Fagerland, Lydersen and Laake, Statistical Analysis of Contingency Tables (2017), ch. 8,
    # complete response (Cavo et al. 2012): R package contingencytables, tests/testthat/
    # test-ch8.R: "estimate = -0.0621 (95% CI -0.1186 to -0.0046)".
    ((59, 6, 16, 80), True, ("-0.1186", "-0.0046")),
    # Tang, Li and Tang (2010) and Chang et al. (2024) examples, matched by ratesci's test3.R
    ((8, 3, 1, 2), True, ("-0.1574", "0.4136")),
    ((7, 25, 2, 68), True, ("0.133", "0.318")),
]


@pytest.mark.parametrize("cells, correct, limits", PUBLISHED)
def test_newcombe_interval_matches_published_limits(cells, correct, limits) -> None:
    counts = PairedCounts(*cells)
    difference, lower, upper = paired.paired_difference_interval(counts, phi_correction=correct)
    e, f, g, h = cells
    assert difference == pytest.approx((f - g) / (e + f + g + h), abs=1e-15)
    assert as_printed(lower, limits[0]) and as_printed(upper, limits[1]), (lower, upper)


def test_the_cavo_estimate_as_printed() -> None:
    difference, _, _ = paired.paired_difference_interval(PairedCounts(59, 6, 16, 80))
    assert as_printed(difference, "-0.0621")


def wilson_by_root_finding(x: int, n: int, z: float) -> tuple[float, float]:
    """The two roots in p of (x/n - p)^2 = z^2 p (1 - p) / n, found numerically."""

    def score(p: float) -> float:
        return (x / n - p) ** 2 - z * z * p * (1 - p) / n

    # the score is 0 at p = x/n only when x/n is 0 or 1; step off it to bracket the root
    inside = min(max(x / n, 1e-12), 1 - 1e-12)
    lower = 0.0 if x == 0 else optimize.brentq(score, 0.0, inside, xtol=1e-15, rtol=1e-15)
    upper = 1.0 if x == n else optimize.brentq(score, inside, 1.0, xtol=1e-15, rtol=1e-15)
    return lower, upper


def newcombe_written_differently(e: int, f: int, g: int, h: int, z: float, correct: bool) -> tuple[float, float]:
    """Method 10 from the paper's formulas, with phi as the Pearson correlation of the two
    per-image indicator vectors and Newcombe's shrinkage applied to its numerator."""
    n = e + f + g + h
    current = np.r_[np.ones(e + f), np.zeros(g + h)]
    baseline = np.r_[np.ones(e), np.zeros(f), np.ones(g), np.zeros(h)]
    p1, p2 = current.mean(), baseline.mean()
    if current.std() == 0 or baseline.std() == 0:
        phi = 0.0
    else:
        phi = float(np.corrcoef(current, baseline)[0, 1])
        # phi = (eh - fg) / sqrt(margins); n * cov = (eh - fg) / n
        numerator = e * h - f * g
        if correct and numerator > 0:
            phi *= max(numerator - n / 2, 0) / numerator
    l1, u1 = wilson_by_root_finding(e + f, n, z)
    l2, u2 = wilson_by_root_finding(e + g, n, z)
    d = p1 - p2
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)),
        d + math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)),
    )


def test_newcombe_interval_agrees_with_a_second_implementation() -> None:
    rng = np.random.default_rng(12)
    tables = [tuple(int(v) for v in rng.integers(0, 30, 4)) for _ in range(150)]
    tables += [(0, 3, 4, 0), (5, 0, 0, 7), (0, 0, 3, 9), (9000, 40, 30, 80)]
    for cells in tables:
        if sum(cells) == 0:
            continue
        for correct in (True, False):
            counts = PairedCounts(*cells)
            _, lower, upper = paired.paired_difference_interval(counts, phi_correction=correct)
            want = newcombe_written_differently(*cells, Z95, correct)
            assert (lower, upper) == pytest.approx(want, abs=1e-9), cells


def test_newcombe_interval_edge_cases() -> None:
    z2 = Z95**2
    # All right on n images: both margins' Wilson intervals are (n/(n + z^2), 1), phi = 0
    # (a margin is empty): the interval is +-z^2/(n + z^2) around 0. The same when all wrong.
    for cells in ((10, 0, 0, 0), (0, 0, 0, 10)):
        difference, lower, upper = paired.paired_difference_interval(PairedCounts(*cells))
        assert difference == 0
        assert (lower, upper) == pytest.approx((-z2 / (10 + z2), z2 / (10 + z2)), abs=1e-15)
    # One image, fixed: p1 = 1, p2 = 0, Wilson (1/(1+z^2), 1) and (0, z^2/(1+z^2)), phi = 0:
    # lower = 1 - sqrt2 z^2/(1+z^2), upper = 1.
    difference, lower, upper = paired.paired_difference_interval(PairedCounts(0, 1, 0, 0))
    assert difference == 1 and upper == pytest.approx(1.0, abs=1e-15)
    assert lower == pytest.approx(1 - math.sqrt(2) * z2 / (1 + z2), abs=1e-15)
    # No discordant images: difference 0 and a symmetric interval, narrowing as n grows
    widths = []
    for n in (10, 100, 1000):
        difference, lower, upper = paired.paired_difference_interval(PairedCounts(n - 2, 0, 0, 2))
        assert difference == 0 and lower < 0 < upper and lower == pytest.approx(-upper, abs=1e-15)
        widths.append(upper - lower)
    assert widths[0] > widths[1] > widths[2]
    with pytest.raises(ValueError, match="no images"):
        paired.paired_difference_interval(PairedCounts(0, 0, 0, 0))
    with pytest.raises(ValueError, match="confidence"):
        paired.paired_difference_interval(PairedCounts(1, 0, 0, 0), confidence=1.0)


def test_newcombe_interval_holds_the_difference_and_stays_in_range() -> None:
    rng = np.random.default_rng(5)
    for _ in range(500):
        cells = [int(v) for v in rng.integers(0, 12, 4) * rng.integers(0, 2, 4)]
        if sum(cells) == 0:
            continue
        for correct in (True, False):
            counts = PairedCounts(*cells)
            difference, lower, upper = paired.paired_difference_interval(counts, phi_correction=correct)
            assert -1 - 1e-12 <= lower <= difference <= upper <= 1 + 1e-12, cells
            assert lower < upper or not correct  # see the next test for the plain phi
        _, narrow_lower, narrow_upper = paired.paired_difference_interval(counts, confidence=0.9)
        _, wide_lower, wide_upper = paired.paired_difference_interval(counts, confidence=0.99)
        assert wide_lower <= narrow_lower and narrow_upper <= wide_upper  # equal only at +-1
        assert wide_upper - wide_lower > narrow_upper - narrow_lower


def test_perfect_agreement_needs_the_phi_correction() -> None:
    # 3 both right, 3 both wrong: p1 = p2 = 1/2, both Wilson half-widths w = z sqrt(z^2 + 6)
    # / (2 (6 + z^2)). Plain phi = 1 makes the interval sqrt(w^2 - 2w^2 + w^2) = 0 wide, the
    # aberration the correction removes: phi = (9 - 3)/9 = 2/3 gives +-w sqrt(2 - 4/3).
    w = Z95 * math.sqrt(Z95**2 + 6) / (2 * (6 + Z95**2))
    assert paired.paired_difference_interval(PairedCounts(3, 0, 0, 3), phi_correction=False) == (0, 0, 0)
    difference, lower, upper = paired.paired_difference_interval(PairedCounts(3, 0, 0, 3))
    assert difference == 0 and upper == pytest.approx(w * math.sqrt(2 / 3), abs=1e-15) and lower == -upper


def test_newcombe_on_mnist_scale_counts() -> None:
    # Two ~99% models on 10,000 images, 40 fixed and 30 broken: the correction barely matters
    # and the interval covers 0 (the McNemar test agrees: 70 discordant, p ~ 0.28).
    counts = PairedCounts(9850, 40, 30, 80)
    difference, lower, upper = paired.paired_difference_interval(counts)
    _, plain_lower, plain_upper = paired.paired_difference_interval(counts, phi_correction=False)
    assert difference == pytest.approx(0.001, abs=1e-15) and lower < 0 < upper
    assert abs(lower - plain_lower) < 1e-4 and abs(upper - plain_upper) < 1e-4
    assert paired.mcnemar_exact(40, 30) == pytest.approx(float(two_sided(30, 70)), rel=1e-12)
    assert paired.mcnemar_exact(40, 30) > 0.05


# -- per-class changes -------------------------------------------------------------------------


def _row(digit: int, sensitivity: float, precision: float, f1: float) -> ClassStats:
    nan = math.nan
    return ClassStats(digit, sensitivity, nan, nan, nan, precision, nan, f1, 0.5, nan, nan, nan)


def test_per_class_deltas_by_hand() -> None:
    nan = math.nan
    baseline = [_row(0, 0.9, 0.8, 0.85), _row(1, nan, 0.5, nan)]  # digit 1: NA, as caret gives
    current = [_row(1, 0.7, 0.75, 0.6), _row(0, 0.95, 0.8, 0.9)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deltas = paired.per_class_deltas(baseline, current)
    assert [row.digit for row in deltas] == [0, 1]
    assert deltas[0].sensitivity == pytest.approx(0.05, abs=1e-15)
    assert deltas[0].precision == 0.0 and deltas[0].f1 == pytest.approx(0.05, abs=1e-15)
    assert math.isnan(deltas[1].sensitivity) and math.isnan(deltas[1].f1)
    assert deltas[1].precision == pytest.approx(0.25, abs=1e-15)


def test_per_class_deltas_refuses_different_classes() -> None:
    with pytest.raises(ValueError, match="differ"):
        paired.per_class_deltas([_row(0, 1, 1, 1)], [_row(1, 1, 1, 1)])
    with pytest.raises(ValueError, match="twice"):
        paired.per_class_deltas([_row(0, 1, 1, 1), _row(0, 1, 1, 1)], [_row(0, 1, 1, 1)])


def test_scipy_normal_quantile_is_rs_qnorm() -> None:
    # R: qnorm(0.975) = 1.959963984540054; the Wilson tests above lean on it
    assert float(stats.norm.ppf(0.975)) == pytest.approx(Z95, abs=1e-15)


# -- the stage: checking the baseline, comparing two evaluations -----------------------------


def test_a_baseline_on_other_test_images_is_refused() -> None:
    from dataclasses import replace

    from conftest import make_record

    from reportgen.errors import ReportgenError

    ours = make_record().data
    check_same_test_images(ours, ours, "base")
    other_training = replace(ours, files={**ours.files, "train-images-idx3-ubyte.gz": "0" * 64}, train_images=2000)
    check_same_test_images(other_training, ours, "base")  # training data may change: that is the point
    renamed = {
        name.replace("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"): digest for name, digest in ours.files.items()
    }
    check_same_test_images(replace(ours, files=renamed), ours, "base")  # the seed's names, the same bytes
    other_test = replace(ours, files={**ours.files, "t10k-labels-idx1-ubyte.gz": "ab" * 32})
    with pytest.raises(
        ReportgenError, match=r"--baseline base: evaluated on other test files .*t10k-labels-idx1-ubyte.gz abababababab"
    ):
        check_same_test_images(other_test, ours, "base")
    fewer = replace(ours, test_images=500)
    with pytest.raises(ReportgenError, match="evaluated on 500 test images, this run on 10,000; give --test-limit 500"):
        check_same_test_images(fewer, ours, "base")
    with pytest.raises(ReportgenError, match="evaluated on 10,000 test images, this run on 500; give no --test-limit"):
        check_same_test_images(ours, fewer, "base")


def test_run_compares_image_by_image() -> None:
    from conftest import scored

    labels = np.arange(20) % 10
    before = labels.copy()
    before[[1, 2, 3]] = [7, 7, 7]  # the baseline gets images 1, 2, 3 wrong
    after = labels.copy()
    after[[3, 4]] = [8, 8]  # this run gets 3 and 4 wrong: fixed 1 and 2, broke 4
    comparison = compare(scored(before, labels, 0.8), scored(after, labels, 0.9), "base")
    assert comparison.counts == PairedCounts(both_right=16, fixed=2, broken=1, both_wrong=1)
    assert [c.index for c in comparison.fixed] == [1, 2] and [c.index for c in comparison.broken] == [4]
    first = comparison.fixed[0]
    assert (first.label, first.baseline_prediction, first.prediction) == (1, 7, 1)
    assert first.baseline_confidence == pytest.approx(0.8) and first.confidence == pytest.approx(0.9)
    assert comparison.accuracy_difference == pytest.approx(1 / 20)
    assert comparison.previous.accuracy == 17 / 20 and comparison.current.accuracy == 18 / 20
    expected = np.zeros((10, 10), np.int64)
    expected[1, 1] = expected[2, 2] = 1  # two more right
    expected[7, 1] = expected[7, 2] = -1  # two fewer 1s and 2s read as 7
    expected[4, 4], expected[8, 4] = -1, 1  # a 4 now read as 8
    expected[7, 3], expected[8, 3] = -1, 1  # the 3 both got wrong: read as 7 before, as 8 now
    assert np.array_equal(comparison.confusion_difference, expected)
    assert comparison.mcnemar_exact_p_value == 1.0  # 2 fixed against 1 broken: binom.test(2, 3) gives 1
    body = comparison.to_json()
    for key in (
        "baseline",
        "baseline_accuracy",
        "accuracy_difference",
        "accuracy_difference_lower",
        "accuracy_difference_upper",
        "fixed",
        "broken",
        "mcnemar_exact_p_value",
        "by_class",
    ):
        assert key in body, key
    assert body["by_class"][4] == {
        "class": 4,
        "sensitivity": -0.5,
        "precision": pytest.approx(0.0),
        "f1": pytest.approx(-1 / 3),
    }


def test_run_refuses_other_labels() -> None:
    from conftest import scored

    from reportgen.errors import ReportgenError

    labels = np.arange(10)
    with pytest.raises(ReportgenError, match="other test labels"):
        compare(scored(labels, labels), scored(labels, labels[::-1]), "base")
