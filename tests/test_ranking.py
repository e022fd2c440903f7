"""ranking.py against independent references: scikit-learn 1.7's sklearn.metrics (a test-only
dependency), sklearn's documented examples, and small cases counted by hand.

Nothing is compared with this code's own earlier output.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from reportgen.stats import ranking


def onehot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.int64)[labels]


def tied_probabilities(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities rounded to 2 decimals (so many scores tie), leaning to the label."""
    labels = rng.integers(0, k, n)
    raw = rng.dirichlet(np.ones(k), size=n)
    raw[np.arange(n), labels] += rng.random(n)  # a better than chance, imperfect ranking
    return np.round(raw / raw.sum(axis=1, keepdims=True), 2), labels


def mnist_like(seed: int, n: int = 10_000, k: int = 10, margin: float = 5.5) -> tuple[np.ndarray, np.ndarray]:
    """float32 softmax outputs of a ~97%-accurate 10-class model; micro ROC AUC ~0.999."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(0.0, 1.5, (n, k))
    logits[np.arange(n), labels] += margin
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32), labels


def trapezoid(x: list[float], y: list[float]) -> float:
    x, y = np.asarray(x), np.asarray(y)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def points(x: np.ndarray, y: np.ndarray) -> set[tuple[float, float]]:
    return set(zip(np.asarray(x).tolist(), np.asarray(y).tolist()))


# -- hand-counted cases ------------------------------------------------------------------------


def test_the_four_point_example_of_sklearns_docs() -> None:
    # sklearn's roc_curve, roc_auc_score and average_precision_score docstrings use
    # y = [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8]. Of the 4 (positive, negative) pairs
    # only (0.35, 0.4) is ordered wrongly: AUC 3/4.
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    positive = np.array([False, False, True, True])
    fpr, tpr, thresholds = ranking.roc_curve(scores, positive)
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thresholds.tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    assert ranking.roc_auc(scores, positive) == 0.75
    # Thresholds 0.8, 0.4, 0.35, 0.1 give (recall, precision) (1/2, 1), (1/2, 1/2), (1, 2/3),
    # (1, 1/2); AP = 1/2 * 1 + 0 + 1/2 * 2/3 = 5/6 (sklearn's docs: 0.83...).
    precision, recall, thresholds = ranking.precision_recall_curve(scores, positive)
    assert precision.tolist() == pytest.approx([1 / 2, 2 / 3, 1 / 2, 1, 1], abs=1e-15)
    assert recall.tolist() == [1, 1, 0.5, 0.5, 0] and thresholds.tolist() == [0.1, 0.35, 0.4, 0.8]
    assert ranking.average_precision(scores, positive) == pytest.approx(5 / 6, abs=1e-15)


def test_perfect_reversed_and_all_tied_rankings() -> None:
    positive = np.array([True, True, True, False, False])
    perfect = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    assert ranking.roc_auc(perfect, positive) == 1.0
    assert ranking.average_precision(perfect, positive) == 1.0
    assert ranking.roc_auc(-perfect, positive) == 0.0
    # reversed: the positives come at ranks 3, 4, 5: AP = (1/3)(1/3) + (1/3)(2/4) + (1/3)(3/5)
    want = (1 / 3 + 1 / 2 + 3 / 5) / 3
    assert ranking.average_precision(-perfect, positive) == pytest.approx(want, abs=1e-15)
    tied = np.full(5, 0.5)
    assert ranking.roc_auc(tied, positive) == 0.5
    fpr, tpr, _ = ranking.roc_curve(tied, positive)  # one threshold: a single diagonal step
    assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1]
    assert ranking.average_precision(tied, positive) == pytest.approx(3 / 5, abs=1e-15)  # prevalence


def test_a_tie_between_a_positive_and_a_negative_counts_one_half() -> None:
    # positives 0.9, 0.5; negatives 0.5, 0.1: pairs 1 + 1 + 1/2 + 1 of 4
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    positive = np.array([True, True, False, False])
    assert ranking.roc_auc(scores, positive) == 0.875
    fpr, tpr, thresholds = ranking.roc_curve(scores, positive)
    assert list(zip(fpr, tpr)) == [(0, 0), (0, 0.5), (0.5, 1), (1, 1)]  # the tie is one diagonal step
    assert thresholds.tolist() == [np.inf, 0.9, 0.5, 0.1]
    # thresholds 0.9 (R 1/2, P 1), 0.5 (R 1, P 2/3), 0.1 (R 1, P 1/2): AP = 1/2 + 1/3
    assert ranking.average_precision(scores, positive) == pytest.approx(5 / 6, abs=1e-15)


def test_undefined_curves_are_nan() -> None:
    scores = np.array([0.3, 0.2, 0.1])
    none = np.zeros(3, bool)
    assert math.isnan(ranking.roc_auc(scores, none)) and math.isnan(ranking.roc_auc(scores, ~none))
    assert math.isnan(ranking.average_precision(scores, none))
    assert ranking.average_precision(scores, ~none) == 1.0  # every threshold's precision is 1
    # roc_curve's NaN axis is sklearn's too (sklearn also warns)
    for positive in (none, ~none):
        fpr, tpr, _ = ranking.roc_curve(scores, positive)
        with pytest.warns(UndefinedMetricWarning):
            want = skm.roc_curve(positive, scores, drop_intermediate=False)
        np.testing.assert_array_equal(fpr, want[0])
        np.testing.assert_array_equal(tpr, want[1])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="bool"):
        ranking.roc_auc(np.array([0.1, 0.2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="finite"):
        ranking.roc_auc(np.array([0.1, np.nan]), np.array([False, True]))
    with pytest.raises(ValueError, match="k >= 2"):
        ranking.ranking_metrics(np.ones((3, 1)), np.zeros(3, int))
    with pytest.raises(ValueError, match="label 3 at index 1"):
        ranking.ranking_metrics(np.full((2, 3), 1 / 3), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ranking.log_loss(np.array([[1.5, -0.5]]), np.array([0]))


# -- against scikit-learn on random data with many ties ----------------------------------------


@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_per_class_curves_and_areas_match_sklearn(k: int, seed: int) -> None:
    probabilities, labels = tied_probabilities(np.random.default_rng(seed), 400, k)
    assert len(np.unique(probabilities)) <= 101  # 2 decimals: ties everywhere
    y = onehot(labels, k)
    assert y.sum(axis=0).min() > 0 and y.sum(axis=0).max() < 400
    for c in range(k):
        scores, positive = probabilities[:, c], labels == c
        got = ranking.roc_curve(scores, positive)
        want = skm.roc_curve(y[:, c], scores, drop_intermediate=False)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        got = ranking.precision_recall_curve(scores, positive)
        want = skm.precision_recall_curve(y[:, c], scores)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        assert ranking.roc_auc(scores, positive) == pytest.approx(skm.roc_auc_score(y[:, c], scores), abs=1e-12)
        assert ranking.average_precision(scores, positive) == pytest.approx(
            skm.average_precision_score(y[:, c], scores), abs=1e-12
        )


@pytest.mark.parametrize("k", [2, 3, 10])
def test_averages_match_sklearn(k: int) -> None:
    probabilities, labels = tied_probabilities(np.random.default_rng(10 + k), 600, k)
    y = onehot(labels, k)
    m = ranking.ranking_metrics(probabilities, labels)
    assert m.roc_auc == pytest.approx(skm.roc_auc_score(y, probabilities, average=None).tolist(), abs=1e-12)
    assert m.average_precision == pytest.approx(
        skm.average_precision_score(y, probabilities, average=None).tolist(), abs=1e-12
    )
    for ours, average in ((m.roc_auc_macro, "macro"), (m.roc_auc_micro, "micro")):
        assert ours == pytest.approx(skm.roc_auc_score(y, probabilities, average=average), abs=1e-12)
    for ours, average in ((m.average_precision_macro, "macro"), (m.average_precision_micro, "micro")):
        want = skm.average_precision_score(y, probabilities, average=average)
        assert ours == pytest.approx(want, abs=1e-12)


def test_float32_softmax_ties_as_sklearn_sees_them() -> None:
    # Margins up to 30 nats saturate float32 softmax: exact 1.0s and underflowed ties.
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 2000)
    logits = rng.normal(0.0, 1.5, (2000, 10))
    logits[np.arange(2000), labels] += rng.uniform(0, 30, 2000)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    assert np.sum(probabilities == 1.0) > 100 and len(np.unique(probabilities)) < probabilities.size
    y = onehot(labels, 10)
    assert np.sum(probabilities.argmax(axis=1) != labels) > 20
    m = ranking.ranking_metrics(probabilities, labels)
    assert m.roc_auc_micro == pytest.approx(skm.roc_auc_score(y, probabilities, average="micro"), abs=1e-12)
    assert m.average_precision_micro == pytest.approx(
        skm.average_precision_score(y, probabilities, average="micro"), abs=1e-12
    )
    assert m.roc_auc == pytest.approx(skm.roc_auc_score(y, probabilities, average=None).tolist(), abs=1e-12)
    assert m.average_precision == pytest.approx(
        skm.average_precision_score(y, probabilities, average=None).tolist(), abs=1e-12
    )


def test_a_class_absent_from_the_labels() -> None:
    probabilities, labels = tied_probabilities(np.random.default_rng(7), 300, 4)
    labels[labels == 2] = 1  # nobody is a 2
    y = onehot(labels, 4)
    present = [0, 1, 3]
    m = ranking.ranking_metrics(probabilities, labels)
    assert math.isnan(m.roc_auc[2]) and math.isnan(m.average_precision[2])
    assert m.roc_curves[2] == {"fpr": [], "tpr": []} and m.pr_curves[2] == {"recall": [], "precision": []}
    # sklearn gives class 2 a NaN ROC AUC too, but then a NaN macro average, and counts its
    # AP as 0 (warning both times); the macro averages here are over the present classes.
    sk_auc = [skm.roc_auc_score(y[:, c], probabilities[:, c]) for c in present]
    sk_ap = [skm.average_precision_score(y[:, c], probabilities[:, c]) for c in present]
    assert [m.roc_auc[c] for c in present] == pytest.approx(sk_auc, abs=1e-12)
    assert m.roc_auc_macro == pytest.approx(np.mean(sk_auc), abs=1e-12)
    assert m.average_precision_macro == pytest.approx(np.mean(sk_ap), abs=1e-12)
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(skm.roc_auc_score(y[:, 2], probabilities[:, 2]))
    # micro pools class 2's column of negatives with the rest, as sklearn does
    assert m.roc_auc_micro == pytest.approx(skm.roc_auc_score(y, probabilities, average="micro"), abs=1e-12)
    assert m.average_precision_micro == pytest.approx(
        skm.average_precision_score(y, probabilities, average="micro"), abs=1e-12
    )


def test_one_class_only() -> None:
    # Every image a 0: class 0 has no negatives, classes 1, 2 no positives. No ROC AUC is
    # defined; class 0's AP is 1 (precision is 1 at every threshold).
    probabilities = np.array([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.4, 0.4, 0.2]])
    m = ranking.ranking_metrics(probabilities, np.zeros(3, int))
    assert all(math.isnan(v) for v in m.roc_auc) and math.isnan(m.roc_auc_macro)
    assert m.average_precision[0] == 1.0 and m.average_precision_macro == 1.0
    assert m.roc_curves == [{"fpr": [], "tpr": []}] * 3
    y = onehot(np.zeros(3, int), 3)
    assert m.roc_auc_micro == pytest.approx(skm.roc_auc_score(y, probabilities, average="micro"), abs=1e-12)


# -- log loss ----------------------------------------------------------------------------------


def test_log_loss_sklearns_documented_example() -> None:
    # sklearn.metrics.log_loss docstring: labels "ham" < "spam", so spam is class 1; 0.21616
    probabilities = np.array([[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]])
    loss = ranking.log_loss(probabilities, np.array([1, 0, 0, 1]))
    assert round(loss, 5) == 0.21616
    assert loss == pytest.approx(-(math.log(0.9) * 2 + math.log(0.8) + math.log(0.65)) / 4, abs=1e-15)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_log_loss_matches_sklearn(k: int) -> None:
    rng = np.random.default_rng(k)
    labels = rng.integers(0, k, 500)
    probabilities = rng.dirichlet(np.ones(k), size=500)
    want = skm.log_loss(labels, probabilities, labels=list(range(k)))
    assert ranking.log_loss(probabilities, labels) == pytest.approx(want, abs=1e-12)
    p32 = probabilities.astype(np.float32)
    want = skm.log_loss(labels, p32, labels=list(range(k)))
    assert ranking.log_loss(p32, labels) == pytest.approx(want, rel=1e-6)


def test_log_loss_with_an_exact_zero_for_the_true_class() -> None:
    # float32 softmax underflows to 0: clipped at float32's eps 2**-23, -ln 2**-23 = 23 ln 2
    p32 = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    labels = np.array([0, 2])
    loss = ranking.log_loss(p32, labels)
    # the right answer costs -ln(1 - 2**-23), not 0: the clip is at 1 - eps too
    assert loss == pytest.approx((23 * math.log(2) - math.log1p(-(2.0**-23))) / 2, rel=1e-12)
    assert math.isfinite(loss)
    assert loss == pytest.approx(skm.log_loss(labels, p32, labels=[0, 1, 2]), rel=1e-6)
    # float64: eps 2**-52
    loss = ranking.log_loss(p32.astype(np.float64), labels)
    assert loss == pytest.approx((52 * math.log(2) - math.log1p(-(2.0**-52))) / 2, rel=1e-12)
    assert loss == pytest.approx(skm.log_loss(labels, p32.astype(np.float64), labels=[0, 1, 2]), abs=1e-12)
    assert ranking.log_loss(p32, labels, eps=1e-3) == pytest.approx(
        (-math.log(1e-3) - math.log(1 - 1e-3)) / 2, rel=1e-12
    )


# -- thinned curves ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray, ranking.RankingMetrics]:
    probabilities, labels = mnist_like(0)
    return probabilities, labels, ranking.ranking_metrics(probabilities, labels)


def test_mnist_like_data_is_what_the_curves_tests_need(mnist) -> None:
    probabilities, labels, _ = mnist
    y = onehot(labels, 10)
    assert 0.999 < skm.roc_auc_score(y, probabilities, average="micro") < 0.9999
    full = skm.roc_curve(y.ravel(), probabilities.ravel(), drop_intermediate=True)[0]
    assert len(full) > 2 * ranking.MAX_CURVE_POINTS  # the micro curve must be thinned


def test_thinned_roc_curves_keep_endpoints_and_area(mnist) -> None:
    probabilities, labels, m = mnist
    y = onehot(labels, 10)
    cases = [(m.roc_curves[c], y[:, c], probabilities[:, c]) for c in range(10)]
    cases.append((m.roc_curve_micro, y.ravel(), probabilities.ravel()))
    for curve, truth, scores in cases:
        fpr, tpr = curve["fpr"], curve["tpr"]
        assert 2 <= len(fpr) <= ranking.MAX_CURVE_POINTS
        assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
        assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
        full_fpr, full_tpr, _ = skm.roc_curve(truth, scores, drop_intermediate=False)
        assert points(fpr, tpr) <= points(full_fpr, full_tpr)  # points of the curve, none made up
        # the point nearest the top-left corner, where an AUC of 0.999 lives, survives
        nearest = np.argmin(full_fpr**2 + (1 - full_tpr) ** 2)
        assert (full_fpr[nearest], full_tpr[nearest]) in points(fpr, tpr)
        # Uniform sampling in arc length misses this by up to 1e-4.
        assert abs(trapezoid(fpr, tpr) - skm.roc_auc_score(truth, scores)) < 1e-5


def test_thinned_pr_curves_keep_endpoints(mnist) -> None:
    probabilities, labels, m = mnist
    y = onehot(labels, 10)
    cases = [(m.pr_curves[c], y[:, c], probabilities[:, c]) for c in range(10)]
    cases.append((m.pr_curve_micro, y.ravel(), probabilities.ravel()))
    for curve, truth, scores in cases:
        recall, precision = curve["recall"], curve["precision"]
        assert 2 <= len(recall) <= ranking.MAX_CURVE_POINTS
        assert (recall[0], precision[0]) == (1.0, truth.mean())  # all images called positive
        assert (recall[-1], precision[-1]) == (0.0, 1.0)
        full_precision, full_recall, _ = skm.precision_recall_curve(truth, scores)
        assert points(recall, precision) <= points(full_recall, full_precision)


def test_an_unthinned_curve_is_the_same_line() -> None:
    # Few points: nothing but points inside straight runs may go, so every turn of sklearn's
    # full curve stays and the area is unchanged.
    probabilities, labels = tied_probabilities(np.random.default_rng(8), 300, 3)
    m = ranking.ranking_metrics(probabilities, labels)
    for c in range(3):
        fpr, tpr, _ = skm.roc_curve(labels == c, probabilities[:, c], drop_intermediate=False)
        dx, dy = np.diff(fpr), np.diff(tpr)
        turning = np.flatnonzero(np.abs(dx[:-1] * dy[1:] - dy[:-1] * dx[1:]) > 1e-12) + 1
        kept = points(m.roc_curves[c]["fpr"], m.roc_curves[c]["tpr"])
        assert points(fpr[turning], tpr[turning]) <= kept
        assert len(kept) < len(fpr)  # something straight was dropped
        assert trapezoid(m.roc_curves[c]["fpr"], m.roc_curves[c]["tpr"]) == pytest.approx(
            skm.roc_auc_score(labels == c, probabilities[:, c]), abs=1e-14
        )


def staircase(start: tuple[float, float], end: tuple[float, float], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Up, right, up, right ... from start to end in equal steps."""
    xs = np.linspace(start[0], end[0], steps + 1)
    ys = np.linspace(start[1], end[1], steps + 1)
    return np.repeat(xs, 2)[:-1], np.repeat(ys, 2)[1:]


def test_downsample_to_three_points_keeps_the_corner() -> None:
    # 100 small steps up to the corner (0.01, 0.99), 100 more out to (1, 1)
    x1, y1 = staircase((0, 0), (0.01, 0.99), 100)
    x2, y2 = staircase((0.01, 0.99), (1, 1), 100)
    x, y = np.r_[x1, x2[1:]], np.r_[y1, y2[1:]]
    sx, sy = ranking.downsample_curve(x, y, max_points=3)
    assert (sx[0], sy[0]) == (0, 0) and (sx[2], sy[2]) == (1, 1)
    assert abs(sx[1] - 0.01) <= 0.0001 and abs(sy[1] - 0.99) <= 0.0001  # at most a step away
    # Nothing straight to drop and enough room: every point stays.
    sx, sy = ranking.downsample_curve(x, y, max_points=len(x))
    assert np.array_equal(sx, x) and np.array_equal(sy, y)
    with pytest.raises(ValueError):
        ranking.downsample_curve(x, y, max_points=1)


def test_no_warnings_from_edge_cases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranking.ranking_metrics(np.array([[0.5, 0.5]]), np.array([0]))
