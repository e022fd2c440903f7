"""The evaluation (run/evaluation.py, stats/) against independent references: the seed's printed
numbers, caret's printed output on published tables, hand arithmetic, closed forms and scipy.

The statistics are never compared with this code's own earlier output.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from decimal import Decimal
from fractions import Fraction

import mxnet as mx
import numpy as np
import pytest
from scipy import stats

from reportgen import notebook
from reportgen.data import Dataset, to_input
from reportgen.errors import DataError
from reportgen.net import model, predict
from reportgen.run import evaluation
from reportgen.run.record import TRAINED_HERE, ModelRecord
from reportgen.stats import calibration, caret, mistakes

nan = math.nan
OVERALL_KEYS = [
    "accuracy",
    "kappa",
    "accuracy_lower",
    "accuracy_upper",
    "accuracy_null",
    "accuracy_p_value",
    "mcnemar_p_value",
]
RANKING_KEYS = ["log_loss", "roc_auc_macro", "roc_auc_micro", "average_precision_macro", "average_precision_micro"]
BY_CLASS_KEYS = [
    "class",
    "sensitivity",
    "specificity",
    "pos_pred_value",
    "neg_pred_value",
    "precision",
    "recall",
    "f1",
    "prevalence",
    "detection_rate",
    "detection_prevalence",
    "balanced_accuracy",
]
BY_CLASS_RANKING_KEYS = ["roc_auc", "average_precision"]
# The short names caret prints, in its order, for the printed-output tables below.
CARET_ROWS = [
    "sensitivity",
    "specificity",
    "pos_pred_value",
    "neg_pred_value",
    "prevalence",
    "detection_rate",
    "detection_prevalence",
    "balanced_accuracy",
]


def class_row(row: caret.ClassStats) -> dict:
    """A by-class row as metrics.json writes it ("class" first)."""
    values = asdict(row)
    return {"class": values.pop("digit"), **values}


def same(actual: float, expected: float, tol: float = 1e-12) -> bool:
    """Equal within tol, with NaN equal only to NaN."""
    if math.isnan(expected):
        return math.isnan(actual)
    return not math.isnan(actual) and abs(actual - expected) <= tol


def as_printed(actual: float, text: str) -> bool:
    """Whether `actual` rounds to the number R printed as `text` (NaN/NA as NaN)."""
    if text in ("NaN", "NA"):
        return math.isnan(actual)
    last_digit = Decimal(text).as_tuple().exponent  # "0.8285" -> -4, "6.255e-15" -> -18
    return not math.isnan(actual) and abs(actual - float(text)) <= 0.5 * 10.0**last_digit * (1 + 1e-9)


def expand(table: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-image predictions and labels that cross-tabulate to `table` (rows predictions)."""
    k = len(table)
    pairs = [(i, j) for i in range(k) for j in range(k) for _ in range(int(table[i][j]))]
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    if rng is not None:
        pairs = pairs[rng.permutation(len(pairs))]
    return pairs[:, 0], pairs[:, 1]


def binomial_upper_tail(x: int, n: int, p: float) -> float:
    """P(X >= x) for X ~ Binomial(n, p), summed term by term in exact fractions."""
    q = Fraction(p)
    return float(sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(x, n + 1)))


def chi2_sf_df1(x: float) -> float:
    return math.erfc(math.sqrt(x / 2))


def chi2_sf_df3(x: float) -> float:
    # P(chi2_3 > x) = 2(1 - Phi(sqrt x)) + sqrt(2x/pi) exp(-x/2)
    return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)


def random_table(rng: np.random.Generator, k: int, diag: int = 60, off: int = 6) -> np.ndarray:
    table = rng.integers(1, off, size=(k, k))
    table[np.diag_indices(k)] = rng.integers(diag // 2, diag, size=k)
    return table


# -- the seed --------------------------------------------------------------------------------


def test_seed_table_gives_the_seeds_printed_overall() -> None:
    overall = asdict(caret.confusion_stats(np.array(notebook.CONFUSION_TABLE)).overall)
    assert list(overall) == OVERALL_KEYS + RANKING_KEYS  # a table alone has no ranking: NaN
    assert all(math.isnan(overall[key]) for key in RANKING_KEYS)
    # cm$overall as the seed printed it: 7 significant digits.
    printed = {
        "accuracy": "0.9901000",
        "kappa": "0.9889958",
        "accuracy_lower": "0.9879601",
        "accuracy_upper": "0.9919467",
        "accuracy_null": "0.1135000",
        "accuracy_p_value": "0.0000000",
        "mcnemar_p_value": "NaN",
    }
    for key, text in printed.items():
        assert as_printed(overall[key], text), (key, overall[key], text)
    # seed.py holds the same numbers.
    for key, value in notebook.OVERALL.items():
        assert same(overall[key], value, 5e-8), key


def test_seed_worst_pair_is_nine_for_four_with_every_index_in_order() -> None:
    table = np.array(notebook.CONFUSION_TABLE)
    predictions, labels = expand(table, np.random.default_rng(0))
    probabilities = np.eye(10, dtype=np.float32)[predictions]
    probabilities[:, 4] += np.arange(len(labels)) / 1e6  # rows tell apart which image they are
    assert np.array_equal(caret.confusion_matrix(predictions, labels), table)
    worst = mistakes.worst_pair(table, predictions, labels, probabilities)
    assert {k: getattr(worst, k) for k in ("prediction", "reference", "count")} == notebook.WORST_PAIR
    expected = [i for i in range(len(labels)) if predictions[i] == 9 and labels[i] == 4]
    assert list(worst.indices) == expected and len(expected) == 10
    assert np.allclose(worst.probabilities, probabilities[expected])


# -- caret's printed output on published tables ---------------------------------------------

# Each: the table as caret printed it (rows Prediction, columns Reference), cm$overall as
# printed, and the byClass rows (CARET_ROWS order) for every class, or for caret's
# "positive" class only when there are two. None: not printed exactly ("< 2.2e-16").
PUBLISHED = {
    # caret's own 2-class example (confusionMatrix.R @examples: 86 normal, 258 abnormal).
    "caret_example": (
        [[231, 32], [27, 54]],
        ["0.8285", "0.5336", "0.7844", "0.8668", "0.75", "0.0003097", "0.6025370"],
        [["0.8953", "0.6279", "0.8783", "0.6667", "0.7500", "0.6715", "0.7645", "0.7616"]],
    ),
    "knn_titanic": (
        [[135, 27], [32, 68]],
        ["0.7748", "0.5183", "0.7194", "0.8239", "0.6374", "1.161e-06", "0.6025"],
        [["0.8084", "0.7158", "0.8333", "0.6800", "0.6374", "0.5153", "0.6183", "0.7621"]],
    ),
    "rf_two_class": (
        [[50, 27], [32, 60]],
        ["0.6509", "0.2999", "0.5739", "0.7225", "0.5148", "0.0002406", "0.6025370"],
        [["0.6098", "0.6897", "0.6494", "0.6522", "0.4852", "0.2959", "0.4556", "0.6497"]],
    ),
    "naive_bayes_iris": (
        [[12, 0, 0], [0, 16, 2], [0, 1, 14]],
        ["0.9333", "0.8989", "0.8173", "0.986", "0.3778", "6.255e-15", "NA"],
        [
            ["1.0000", "1.0000", "1.0000", "1.0000", "0.2667", "0.2667", "0.2667", "1.0000"],
            ["0.9412", "0.9286", "0.8889", "0.9630", "0.3778", "0.3556", "0.4000", "0.9349"],
            ["0.8750", "0.9655", "0.9333", "0.9333", "0.3556", "0.3111", "0.3333", "0.9203"],
        ],
    ),
    # Class D is never predicted: caret prints Pos Pred Value NaN for it.
    "rpart_class_never_predicted": (
        [
            [907, 215, 122, 169, 57],
            [21, 328, 18, 126, 102],
            [464, 406, 715, 509, 332],
            [0, 0, 0, 0, 0],
            [3, 0, 0, 0, 410],
        ],
        ["0.4812", "0.343", "0.4672", "0.4953", "0.2845", None, "NA"],
        [
            ["0.6502", "0.8396", "0.6170", "0.8579", "0.2845", "0.1850", "0.2998", "0.7449"],
            ["0.34563", "0.93249", "0.55126", "0.85588", "0.19352", "0.06688", "0.12133", "0.63906"],
            ["0.8363", "0.5774", "0.2947", "0.9435", "0.1743", "0.1458", "0.4947", "0.7068"],
            ["0.0000", "1.0000", "NaN", "0.8361", "0.1639", "0.0000", "0.0000", "0.5000"],
            ["0.45505", "0.99925", "0.99274", "0.89067", "0.18373", "0.08361", "0.08422", "0.72715"],
        ],
    ),
    "rf_five_class": (
        [[2226, 22, 2, 5, 2], [2, 1484, 18, 0, 0], [0, 12, 1345, 40, 7], [4, 0, 2, 1237, 6], [0, 0, 1, 4, 1427]],
        ["0.9838", "0.9795", "0.9808", "0.9865", "0.2845", None, "NA"],
        [
            ["0.9973", "0.9945", "0.9863", "0.9989", "0.2845", "0.2837", "0.2877", "0.9959"],
            ["0.9776", "0.9968", "0.9867", "0.9946", "0.1935", "0.1891", "0.1917", "0.9872"],
            ["0.9832", "0.9909", "0.9580", "0.9964", "0.1744", "0.1714", "0.1789", "0.9870"],
            ["0.9619", "0.9982", "0.9904", "0.9926", "0.1639", "0.1577", "0.1592", "0.9800"],
            ["0.9896", "0.9992", "0.9965", "0.9977", "0.1838", "0.1819", "0.1825", "0.9944"],
        ],
    ),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_caret_output(name: str) -> None:
    table, overall_printed, by_class_printed = PUBLISHED[name]
    result = caret.confusion_stats(np.array(table))
    for key, text in zip(OVERALL_KEYS, overall_printed):
        if text is None:  # printed as "< 2.2e-16"
            assert getattr(result.overall, key) < 2.2e-16, key
        else:
            assert as_printed(getattr(result.overall, key), text), (key, getattr(result.overall, key), text)
    for k, row in enumerate(by_class_printed):
        for key, text in zip(CARET_ROWS, row):
            assert as_printed(getattr(result.by_class[k], key), text), (k, key, getattr(result.by_class[k], key), text)


# -- hand-computed tables --------------------------------------------------------------------


def test_two_by_two_by_hand() -> None:
    # rows predictions, columns reference; n = 10, 7 right.
    result = caret.confusion_stats(np.array([[3, 1], [2, 4]]))
    o = result.overall
    assert same(o.accuracy, 0.7)
    # margins: predicted (4, 6), reference (5, 5); chance = (4*5 + 6*5)/100 = 0.5
    assert same(o.kappa, (0.7 - 0.5) / (1 - 0.5))  # 0.4
    # R: binom.test(7, 10)$conf.int = 0.3475471 0.9332605
    assert as_printed(o.accuracy_lower, "0.3475471") and as_printed(o.accuracy_upper, "0.9332605")
    assert same(o.accuracy_null, 0.5)
    # P(X >= 7 | 10, 1/2) = (C(10,7) + C(10,8) + C(10,9) + C(10,10)) / 2^10 = 176/1024
    assert same(o.accuracy_p_value, 176 / 1024)
    # McNemar, b = 1, c = 2: (|1 - 2| - 1)^2 / 3 = 0, p = 1
    assert same(o.mcnemar_p_value, 1.0)
    # class 0: A=3 B=1 C=2 D=4; class 1: A=4 B=2 C=1 D=3
    expected = [
        {
            "class": 0,
            "sensitivity": 3 / 5,
            "specificity": 4 / 5,
            "pos_pred_value": 3 / 4,
            "neg_pred_value": 4 / 6,
            "precision": 3 / 4,
            "recall": 3 / 5,
            "f1": 2 / 3,
            "prevalence": 0.5,
            "detection_rate": 0.3,
            "detection_prevalence": 0.4,
            "balanced_accuracy": 0.7,
        },
        {
            "class": 1,
            "sensitivity": 4 / 5,
            "specificity": 3 / 5,
            "pos_pred_value": 4 / 6,
            "neg_pred_value": 3 / 4,
            "precision": 4 / 6,
            "recall": 4 / 5,
            "f1": 8 / 11,
            "prevalence": 0.5,
            "detection_rate": 0.4,
            "detection_prevalence": 0.6,
            "balanced_accuracy": 0.7,
        },
    ]
    for got, want in zip(result.by_class, expected):
        got = class_row(got)
        assert list(got) == BY_CLASS_KEYS + BY_CLASS_RANKING_KEYS
        for key in BY_CLASS_KEYS:
            assert same(got[key], want[key]), key


def test_three_by_three_by_hand() -> None:
    table = np.array([[5, 1, 2], [3, 4, 1], [0, 2, 6]])
    result = caret.confusion_stats(table)
    o = result.overall
    # n = 24, 15 right; predicted (8, 8, 8), reference (8, 7, 9)
    assert same(o.accuracy, 15 / 24)
    # chance = (8*8 + 8*7 + 8*9) / 24^2 = 1/3; kappa = (15/24 - 1/3) / (2/3) = 7/16
    assert same(o.kappa, 7 / 16)
    assert same(o.accuracy_null, 9 / 24)
    assert same(o.accuracy_p_value, binomial_upper_tail(15, 24, 9 / 24), 1e-12)
    # Bowker: (1-3)^2/4 + (2-0)^2/2 + (1-2)^2/3 = 1 + 2 + 1/3 on 3 df
    assert same(o.mcnemar_p_value, chi2_sf_df3(10 / 3), 1e-12)
    assert caret.mcnemar_test(table)[:2] == (pytest.approx(10 / 3, abs=1e-12), 3)
    # class 0: A=5 B=3 C=3 D=13; class 1: A=4 B=4 C=3 D=13; class 2: A=6 B=2 C=3 D=13
    expected = {
        "sensitivity": [5 / 8, 4 / 7, 6 / 9],
        "specificity": [13 / 16, 13 / 17, 13 / 15],
        "pos_pred_value": [5 / 8, 4 / 8, 6 / 8],
        "neg_pred_value": [13 / 16, 13 / 16, 13 / 16],
        "precision": [5 / 8, 4 / 8, 6 / 8],
        "recall": [5 / 8, 4 / 7, 6 / 9],
        "f1": [5 / 8, 8 / 15, 12 / 17],
        "prevalence": [8 / 24, 7 / 24, 9 / 24],
        "detection_rate": [5 / 24, 4 / 24, 6 / 24],
        "detection_prevalence": [8 / 24] * 3,
        "balanced_accuracy": [(5 / 8 + 13 / 16) / 2, (4 / 7 + 13 / 17) / 2, (6 / 9 + 13 / 15) / 2],
    }
    for key, values in expected.items():
        for k, value in enumerate(values):
            assert same(getattr(result.by_class[k], key), value), (k, key)


def test_class_never_present_is_nan_where_caret_is() -> None:
    # class 2 is predicted twice but never the reference
    table = np.array([[4, 1, 0], [1, 3, 0], [1, 1, 0]])
    row = caret.confusion_stats(table).by_class[2]
    assert math.isnan(row.sensitivity) and math.isnan(row.recall)  # 0 reference images
    assert same(row.specificity, 9 / 11)
    # caret's predictive values go through sensitivity, so both are NA here, even though
    # the counts would give PPV = 0/2; precision is counted directly and is 0.
    assert math.isnan(row.pos_pred_value) and math.isnan(row.neg_pred_value)
    assert same(row.precision, 0.0)
    assert math.isnan(row.f1) and math.isnan(row.balanced_accuracy)
    assert same(row.prevalence, 0.0) and same(row.detection_rate, 0.0)
    assert same(row.detection_prevalence, 2 / 11)
    # the other classes are untouched: class 0 is A=4 B=1 C=2 D=4
    row0 = caret.confusion_stats(table).by_class[0]
    assert same(row0.sensitivity, 4 / 6) and same(row0.pos_pred_value, 4 / 5)
    # Bowker: pairs (0,1) 1 vs 1, (0,2) 0 vs 1, (1,2) 0 vs 1 -> 0 + 1 + 1 on 3 df
    assert same(caret.confusion_stats(table).overall.mcnemar_p_value, chi2_sf_df3(2.0), 1e-12)


def test_class_never_predicted_is_nan_where_caret_is() -> None:
    table = np.array([[4, 1, 1], [1, 3, 1], [0, 0, 0]])
    row = caret.confusion_stats(table).by_class[2]  # A=0 B=0 C=2 D=9
    assert same(row.sensitivity, 0.0) and same(row.specificity, 1.0)
    assert math.isnan(row.pos_pred_value) and math.isnan(row.precision)  # 0/0
    assert same(row.neg_pred_value, 9 / 11)
    assert same(row.recall, 0.0) and math.isnan(row.f1)
    assert same(row.balanced_accuracy, 0.5) and same(row.detection_prevalence, 0.0)


def test_f1_is_nan_when_precision_and_recall_are_both_zero() -> None:
    # caret's F_meas is 2PR/(P+R) with no guard: 0/0. (Other libraries report 0.)
    row = caret.confusion_stats(np.array([[0, 2], [3, 5]])).by_class[0]
    assert same(row.precision, 0.0) and same(row.recall, 0.0) and math.isnan(row.f1)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_perfect_classifier(k: int) -> None:
    counts = np.arange(1, k + 1) * 7
    result = caret.confusion_stats(np.diag(counts))
    o, n = result.overall, int(counts.sum())
    assert same(o.accuracy, 1.0) and same(o.kappa, 1.0)
    # Clopper-Pearson with x = n: lower = (alpha/2)^(1/n), upper = 1
    assert same(o.accuracy_lower, 0.025 ** (1 / n), 1e-12) and o.accuracy_upper == 1.0
    assert same(o.accuracy_null, counts.max() / n)
    assert same(o.accuracy_p_value, (counts.max() / n) ** n, 1e-15)  # P(X >= n) = p^n
    assert math.isnan(o.mcnemar_p_value)  # every pair is 0 both ways: 0/0
    for c, row in enumerate(result.by_class):
        for key in (
            "sensitivity",
            "specificity",
            "pos_pred_value",
            "neg_pred_value",
            "precision",
            "recall",
            "f1",
            "balanced_accuracy",
        ):
            assert same(getattr(row, key), 1.0), (c, key)
        assert same(row.prevalence, counts[c] / n) and same(row.detection_rate, counts[c] / n)


def test_a_single_class_present_and_always_right() -> None:
    result = caret.confusion_stats(np.array([[5, 0], [0, 0]]))
    o = result.overall
    assert same(o.accuracy, 1.0)
    assert math.isnan(o.kappa)  # chance agreement 1: (1 - 1)/(1 - 1)
    assert same(o.accuracy_null, 1.0) and same(o.accuracy_p_value, 1.0)
    row = result.by_class[0]
    assert same(row.sensitivity, 1.0) and math.isnan(row.specificity)  # no negatives
    assert math.isnan(row.pos_pred_value)  # (1 - NA) * 0 is NA in R
    assert same(row.precision, 1.0)


def test_no_image_right() -> None:
    o = caret.confusion_stats(np.array([[0, 3], [2, 0]])).overall
    assert o.accuracy == 0.0 and o.accuracy_lower == 0.0
    assert same(o.accuracy_upper, 1 - 0.025 ** (1 / 5), 1e-12)  # x = 0: 1 - (alpha/2)^(1/n)
    assert same(o.accuracy_p_value, 1.0)


# -- against independent formulas and scipy, 3 to 10 classes ---------------------------------


def kappa_weighted_form(table: np.ndarray) -> float:
    """Cohen's kappa as 1 - sum(W O) / sum(W E), disagreement weights W = 1 - I."""
    observed = table / table.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    w = 1 - np.eye(len(table))
    return 1 - (w * observed).sum() / (w * expected).sum()


def bowker_loop(table: np.ndarray) -> float:
    k = len(table)
    return sum(
        (table[i, j] - table[j, i]) ** 2 / (table[i, j] + table[j, i]) for i in range(k) for j in range(i + 1, k)
    )


@pytest.mark.parametrize("k", range(3, 11))
def test_random_tables_against_independent_references(k: int) -> None:
    rng = np.random.default_rng(100 + k)
    table = random_table(rng, k)
    predictions, labels = expand(table, rng)
    n = len(labels)
    result = caret.confusion_stats(caret.confusion_matrix(predictions, labels, n_classes=k))
    o = result.overall
    right = int(np.sum(predictions == labels))
    assert same(o.accuracy, right / n)
    assert same(o.kappa, kappa_weighted_form(table), 1e-12)
    ci = stats.binomtest(right, n).proportion_ci(confidence_level=0.95, method="exact")
    assert same(o.accuracy_lower, ci.low, 1e-10) and same(o.accuracy_upper, ci.high, 1e-10)
    null = np.bincount(labels, minlength=k).max() / n
    assert same(o.accuracy_null, null)
    assert same(o.accuracy_p_value, binomial_upper_tail(right, n, null), 1e-10)
    assert same(o.mcnemar_p_value, stats.chi2.sf(bowker_loop(table), k * (k - 1) / 2), 1e-12)
    for c, row in enumerate(result.by_class):
        # counted image by image; the predictive values as plain ratios of counts
        a = np.sum((predictions == c) & (labels == c))
        b = np.sum((predictions == c) & (labels != c))
        cc = np.sum((predictions != c) & (labels == c))
        d = np.sum((predictions != c) & (labels != c))
        want = {
            "sensitivity": a / (a + cc),
            "specificity": d / (b + d),
            "pos_pred_value": a / (a + b),
            "neg_pred_value": d / (cc + d),
            "precision": a / (a + b),
            "recall": a / (a + cc),
            "f1": 2 * a / (2 * a + b + cc),
            "prevalence": (a + cc) / n,
            "detection_rate": a / n,
            "detection_prevalence": (a + b) / n,
            "balanced_accuracy": (a / (a + cc) + d / (b + d)) / 2,
        }
        assert row.digit == c
        for key, value in want.items():
            assert same(getattr(row, key), float(value), 1e-12), (c, key)


def test_large_table() -> None:
    rng = np.random.default_rng(5)
    table = rng.integers(100, 5000, size=(10, 10))
    table[np.diag_indices(10)] = rng.integers(2_000_000, 3_000_000, size=10)
    n, right = int(table.sum()), int(np.trace(table))
    o = caret.confusion_stats(table).overall
    assert same(o.accuracy, right / n)
    assert same(o.kappa, kappa_weighted_form(table), 1e-12)
    ci = stats.binomtest(right, n).proportion_ci(method="exact")
    assert same(o.accuracy_lower, ci.low, 1e-10) and same(o.accuracy_upper, ci.high, 1e-10)
    assert o.accuracy_p_value == 0.0  # below the smallest double
    assert same(o.mcnemar_p_value, stats.chi2.sf(bowker_loop(table), 45), 1e-12)


def test_mcnemar_two_by_two_with_continuity_correction() -> None:
    # R: mcnemar.test(matrix(c(794, 86, 150, 570), 2))
    #   McNemar's chi-squared = 16.818, df = 1, p-value = 4.115e-05
    # by hand: (|150 - 86| - 1)^2 / (150 + 86) = 3969/236
    statistic, df, p = caret.mcnemar_test(np.array([[794, 150], [86, 570]]))
    assert df == 1 and same(statistic, 3969 / 236) and as_printed(statistic, "16.818")
    assert as_printed(p, "4.115e-05") and same(p, chi2_sf_df1(3969 / 236), 1e-15)
    # R applies the correction only when b != c: then the statistic is 0, p 1 ...
    assert caret.mcnemar_test(np.array([[5, 3], [3, 5]]))[::2] == (0.0, 1.0)
    # ... and a table without disagreements is 0/0.
    assert all(math.isnan(v) for v in caret.mcnemar_test(np.array([[5, 0], [0, 5]]))[::2])


def test_bad_tables_are_refused() -> None:
    for bad in ([[1, 2, 3]], [[5]], [[0, 0], [0, 0]], [[1, -1], [0, 1]]):
        with pytest.raises(ValueError):
            caret.confusion_stats(np.array(bad))


# -- confusion matrix, worst pair, top errors, calibration ------------------------------------


def test_confusion_matrix_rows_are_predictions() -> None:
    table = caret.confusion_matrix(np.array([1, 1, 2, 0]), np.array([0, 1, 1, 0]), n_classes=3)
    assert table.dtype == np.int64
    assert table.tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="label 3 at index 1"):
        caret.confusion_matrix(np.array([0, 1]), np.array([0, 3]), n_classes=3)


def test_worst_pair_ties_go_to_the_smallest_reference_then_prediction() -> None:
    #              reference 0  1  2
    # prediction 0         [1, 3, 0]
    #            1         [0, 2, 0]
    #            2         [3, 3, 1]   max off-diagonal 3 at (0,1), (2,0), (2,1)
    predictions = np.array([0, 2, 0, 2, 2, 0, 2, 0, 1, 2, 2, 1, 2])
    labels = np.array([1, 0, 0, 1, 0, 1, 2, 1, 1, 0, 1, 1, 1])
    table = caret.confusion_matrix(predictions, labels, n_classes=3)
    assert table.tolist() == [[1, 3, 0], [0, 2, 0], [3, 3, 1]]
    probabilities = np.full((13, 3), 0.1) + np.arange(13)[:, None] / 100
    worst = mistakes.worst_pair(table, predictions, labels, probabilities)
    # R's which(arr.ind = TRUE) is column-major: reference 0 before reference 1.
    assert (worst.prediction, worst.reference, worst.count) == (2, 0, 3)
    assert worst.indices == (1, 4, 9)
    assert np.allclose(worst.probabilities, probabilities[[1, 4, 9]])
    # Without the reference-0 cell, the two reference-1 cells tie: prediction 0 first.
    keep = labels != 0
    table = caret.confusion_matrix(predictions[keep], labels[keep], n_classes=3)
    worst = mistakes.worst_pair(table, predictions[keep], labels[keep], probabilities[keep])
    assert (worst.prediction, worst.reference, worst.count) == (0, 1, 3)


def test_worst_pair_without_errors() -> None:
    labels = np.array([0, 1, 2])
    table = caret.confusion_matrix(labels, labels, n_classes=3)
    worst = mistakes.worst_pair(table, labels, labels, np.eye(3))
    assert (worst.prediction, worst.reference, worst.count, worst.indices) == (None, None, 0, ())
    assert worst.probabilities.shape == (0, 3)


def test_top_errors_most_confident_first() -> None:
    labels = np.array([0, 1, 2, 3, 4, 5])
    predictions = np.array([0, 2, 0, 3, 1, 1])  # wrong at 1, 2, 4, 5
    probabilities = np.zeros((6, 10))
    for i, (p, conf) in enumerate(zip(predictions, [0.99, 0.6, 0.9, 0.7, 0.6, 0.8])):
        probabilities[i] = (1 - conf) / 9
        probabilities[i, p] = conf
    errors = mistakes.top_errors(predictions, labels, probabilities)
    # confidences 0.9 (2), 0.8 (5), 0.6 (1), 0.6 (4): a tie keeps test-set order
    assert [e.index for e in errors] == [2, 5, 1, 4]
    assert [e.confidence for e in errors] == pytest.approx([0.9, 0.8, 0.6, 0.6])
    assert asdict(errors[0]) == {
        "index": 2,
        "label": 2,
        "prediction": 0,
        "confidence": pytest.approx(0.9),
        "probabilities": pytest.approx(tuple(probabilities[2].tolist())),
    }
    assert [e.index for e in mistakes.top_errors(predictions, labels, probabilities, k=3)] == [2, 5, 1]
    assert mistakes.top_errors(labels, labels, probabilities) == ()


def test_calibration_by_hand() -> None:
    # (top probability, its class, label): bins 3, 3, 9, 9 (1.0 in the last), 5
    cases = [(0.3, 0, 0), (0.35, 1, 2), (0.95, 3, 3), (1.0, 4, 4), (0.55, 5, 6)]
    probabilities = np.zeros((5, 10))
    for i, (top, c, _) in enumerate(cases):
        probabilities[i] = (1 - top) / 9
        probabilities[i, c] = top
    labels = np.array([label for *_, label in cases])
    result = calibration.calibration(probabilities, labels)
    bins = result.bins
    assert [b.lower for b in bins] == pytest.approx([i / 10 for i in range(10)])
    assert [b.upper for b in bins] == pytest.approx([i / 10 for i in range(1, 11)])
    assert [b.count for b in bins] == [0, 0, 0, 2, 0, 1, 0, 0, 0, 2]
    assert bins[3].confidence == pytest.approx(0.325) and bins[3].accuracy == 0.5
    assert bins[5].confidence == pytest.approx(0.55) and bins[5].accuracy == 0.0
    assert bins[9].confidence == pytest.approx(0.975) and bins[9].accuracy == 1.0
    assert bins[0].confidence is None and bins[0].accuracy is None
    # ECE = 2/5 |0.5 - 0.325| + 1/5 |0 - 0.55| + 2/5 |1 - 0.975| = 0.07 + 0.11 + 0.01
    assert result.ece == pytest.approx(0.19, abs=1e-12)
    # float32 probabilities fall in the same bins
    assert [b.count for b in calibration.calibration(probabilities.astype(np.float32), labels).bins] == [
        0,
        0,
        0,
        2,
        0,
        1,
        0,
        0,
        0,
        2,
    ]


def test_calibration_bin_edges_belong_to_the_bin_above() -> None:
    # top probability exactly k/10 goes to bin k ([k/10, (k+1)/10)); 1.0 to the last bin
    tops = [k / 10 for k in range(1, 11)]
    probabilities = np.array([[top] + [(1 - top) / 9] * 9 for top in tops])
    counts = [b.count for b in calibration.calibration(probabilities, np.zeros(10, int)).bins]
    assert counts == [0, 1, 1, 1, 1, 1, 1, 1, 1, 2]


# -- predictions through the network ----------------------------------------------------------


class ShapeRecorder:
    """Calls the net and remembers every input shape it was given."""

    def __init__(self, net: mx.gluon.HybridBlock) -> None:
        self.net, self.shapes = net, []

    def __call__(self, x: mx.nd.NDArray) -> mx.nd.NDArray:
        self.shapes.append(x.shape)
        return self.net(x)


@pytest.fixture(scope="module")
def net() -> mx.gluon.HybridBlock:
    return model.build(mx.cpu(), seed=11)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, size=(23, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("batch_size", [5, 23, 1000])
def test_predict_matches_the_plain_forward_with_one_batch_shape(net, images, batch_size: int) -> None:
    recorder = ShapeRecorder(net)
    probabilities = predict.predict(recorder, images, mx.cpu(), batch_size=batch_size)
    assert probabilities.shape == (23, 10) and probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    size = min(batch_size, 23)
    assert set(recorder.shapes) == {(size, 1, 28, 28)}  # the tail was padded, not shortened
    assert len(recorder.shapes) == math.ceil(23 / size)
    direct = np.concatenate([net(mx.nd.array(to_input(images[i : i + 1]))).asnumpy() for i in range(23)])
    assert np.allclose(probabilities, direct, rtol=1e-5, atol=1e-6)


def test_run_writes_valid_json_and_reads_it_back(net, images) -> None:
    labels = np.arange(23, dtype=np.uint8) % 10
    dataset = Dataset(
        train_x=images[:1],
        train_y=labels[:1],
        test_x=images,
        test_y=labels,
        checksums={},
        data_dir="-",
        train_total=1,
        test_total=23,
    )
    network = model.network(net, ModelRecord(TRAINED_HERE, 1))
    result = evaluation.score(predict.probabilities(network, dataset.test_x, mx.cpu(), batch_size=10), dataset.test_y)
    assert result.n_test == 23 and result.probabilities.shape == (23, 10)
    assert np.array_equal(result.predictions, result.probabilities.argmax(axis=1))
    table = np.zeros((10, 10), np.int64)
    for p, label in zip(result.predictions, labels):
        table[p, label] += 1
    assert np.array_equal(result.confusion_matrix, table)

    metrics = result.to_json()
    text = json.dumps(metrics, allow_nan=False)  # NaN must have become null
    assert list(metrics) == [
        "n_test",
        "confusion_matrix",
        "overall",
        "by_class",
        "worst_pair",
        "top_errors",
        "calibration",
    ]
    assert list(metrics["overall"]) == OVERALL_KEYS + RANKING_KEYS
    assert [list(row) for row in metrics["by_class"]] == [BY_CLASS_KEYS + BY_CLASS_RANKING_KEYS] * 10
    assert metrics["confusion_matrix"] == table.tolist()
    assert set(metrics["worst_pair"]) == {"prediction", "reference", "count", "indices", "probabilities"}
    assert len(metrics["worst_pair"]["indices"]) == metrics["worst_pair"]["count"]
    assert len(metrics["calibration"]["bins"]) == 10
    assert sum(b["count"] for b in metrics["calibration"]["bins"]) == 23
    errors = int(np.sum(result.predictions != labels))
    assert len(metrics["top_errors"]) == min(20, errors)

    back = evaluation.Evaluation.from_json(json.loads(text))
    assert back.probabilities is None and back.labels is None
    assert back.to_json() == json.loads(text)


def test_seed_metrics_write_nan_as_null() -> None:
    table = np.array(notebook.CONFUSION_TABLE)
    predictions, labels = expand(table)
    probabilities = np.eye(10, dtype=np.float32)[predictions]
    stats_ = caret.confusion_stats(table)
    result = evaluation.Evaluation(
        probabilities=probabilities,
        predictions=predictions,
        labels=labels,
        confusion_matrix=table,
        overall=stats_.overall,
        by_class=stats_.by_class,
        worst_pair=mistakes.worst_pair(table, predictions, labels, probabilities),
        top_errors=mistakes.top_errors(predictions, labels, probabilities),
        calibration=calibration.calibration(probabilities, labels),
        n_test=len(labels),
    )
    text = json.dumps(result.to_json(), allow_nan=False)
    metrics = json.loads(text)
    assert metrics["overall"]["mcnemar_p_value"] is None
    assert isinstance(metrics["overall"]["kappa"], float) and isinstance(metrics["n_test"], int)
    assert metrics["worst_pair"]["count"] == 10 and len(metrics["worst_pair"]["indices"]) == 10
    assert math.isnan(evaluation.Evaluation.from_json(metrics).overall.mcnemar_p_value)
    del metrics["calibration"]
    with pytest.raises(DataError, match="metrics.json: not a reportgen metrics.json .*'calibration'"):
        evaluation.Evaluation.from_json(metrics)
    misspelt = json.loads(text)
    misspelt["overall"]["kapa"] = misspelt["overall"].pop("kappa")
    with pytest.raises(DataError, match="'kappa'"):  # a key that is not there fails on reading
        evaluation.Evaluation.from_json(misspelt)


# -- ranking metrics of a real evaluation, against scikit-learn --------------------------------


@pytest.fixture(scope="module")
def trained_evaluation(trained_run) -> evaluation.Evaluation:
    """The conftest's 1-epoch LeNet on the first 1,000 real MNIST test images."""
    from reportgen import data
    from reportgen.net import saved

    network = saved.load(saved.find(trained_run), str(trained_run), mx.cpu())
    dataset = data.load(test_limit=1000)
    return evaluation.score(predict.probabilities(network, dataset.test_x, mx.cpu()), dataset.test_y)


def sklearn_ranking(probabilities: np.ndarray, labels: np.ndarray, loss: bool = True) -> dict:
    from sklearn import metrics as skm

    onehot = np.eye(10, dtype=np.int64)[labels]
    return {
        "log_loss": skm.log_loss(labels, probabilities, labels=list(range(10))) if loss else math.nan,
        "roc_auc_macro": skm.roc_auc_score(onehot, probabilities, average="macro"),
        "roc_auc_micro": skm.roc_auc_score(onehot, probabilities, average="micro"),
        "average_precision_macro": skm.average_precision_score(onehot, probabilities, average="macro"),
        "average_precision_micro": skm.average_precision_score(onehot, probabilities, average="micro"),
        "roc_auc": skm.roc_auc_score(onehot, probabilities, average=None),
        "average_precision": skm.average_precision_score(onehot, probabilities, average=None),
    }


def test_a_real_evaluation_has_sklearns_ranking_metrics(trained_evaluation) -> None:
    result = trained_evaluation
    probabilities, labels = result.probabilities, result.labels
    assert probabilities.dtype == np.float32 and set(labels.tolist()) == set(range(10))
    # float32 softmax outputs tie: pooled for the micro averages, some of the 10,000 scores are
    # equal, so the comparison includes ties (the next test has many more).
    assert len(np.unique(probabilities)) < probabilities.size
    want = sklearn_ranking(probabilities, labels)
    for key in RANKING_KEYS:
        assert getattr(result.overall, key) == pytest.approx(want[key], rel=1e-12, abs=1e-15), key
    for row in result.by_class:
        assert row.roc_auc == pytest.approx(want["roc_auc"][row.digit], rel=1e-12), row.digit
        assert row.average_precision == pytest.approx(want["average_precision"][row.digit], rel=1e-12), row.digit
    assert result.ranking is not None and result.ranking.roc_auc_micro == result.overall.roc_auc_micro


def test_ranking_metrics_with_many_ties_match_sklearn(trained_evaluation) -> None:
    # The same evaluation with its probabilities rounded to 2 decimals: most scores tie.
    rounded = np.round(trained_evaluation.probabilities.astype(np.float64), 2)
    result = evaluation.score(rounded, trained_evaluation.labels)
    assert len(np.unique(rounded[:, 3])) < 300  # of 1,000 images
    want = sklearn_ranking(rounded, trained_evaluation.labels, loss=False)
    for key in RANKING_KEYS[1:]:  # not the log loss, which ties do not touch
        assert getattr(result.overall, key) == pytest.approx(want[key], rel=1e-12, abs=1e-15), key
    assert [row.roc_auc for row in result.by_class] == pytest.approx(list(want["roc_auc"]), rel=1e-12)


def test_predictions_round_trip_and_restore_the_curves(trained_evaluation, tmp_path) -> None:
    path = trained_evaluation.per_image().save(tmp_path / "predictions.npz")
    with np.load(path) as saved:  # numpy's own reader: the names and types the issue asks for
        assert sorted(saved.files) == ["labels", "predictions", "probabilities"]
        assert saved["probabilities"].dtype == np.float32 and saved["probabilities"].shape == (1000, 10)
        assert np.array_equal(saved["labels"], trained_evaluation.labels)
        assert np.array_equal(saved["predictions"], trained_evaluation.predictions)
        assert np.array_equal(saved["probabilities"], trained_evaluation.probabilities)
    first = path.read_bytes()
    assert trained_evaluation.per_image().save(tmp_path / "again.npz").read_bytes() == first  # no date inside
    back = evaluation.Evaluation.from_json(json.loads(json.dumps(trained_evaluation.to_json())))
    assert back.ranking is None and back.overall.log_loss == trained_evaluation.overall.log_loss
    restored = back.with_predictions(evaluation.Predictions.load(path))
    assert restored.ranking.roc_curves == trained_evaluation.ranking.roc_curves


def test_predictions_of_another_run_are_refused(trained_evaluation, tmp_path) -> None:
    per_image = trained_evaluation.per_image()
    shuffled = evaluation.Predictions(per_image.labels[::-1].copy(), per_image.predictions, per_image.probabilities)
    back = evaluation.Evaluation.from_json(trained_evaluation.to_json())
    with pytest.raises(DataError, match="do not give metrics.json's confusion matrix"):
        back.with_predictions(shuffled, "x/predictions.npz")
    np.savez(tmp_path / "bad.npz", labels=per_image.labels, predictions=per_image.predictions)
    with pytest.raises(DataError, match="no array 'probabilities'"):
        evaluation.Predictions.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz file"):
        evaluation.Predictions.load(tmp_path / "junk.npz")


def test_a_metrics_json_from_before_the_ranking_metrics_still_loads(trained_evaluation) -> None:
    body = trained_evaluation.to_json()
    for key in RANKING_KEYS:
        del body["overall"][key]
    for row in body["by_class"]:
        del row["roc_auc"], row["average_precision"]
    old = evaluation.Evaluation.from_json(body)
    assert math.isnan(old.overall.log_loss) and math.isnan(old.by_class[0].roc_auc) and old.ranking is None
    assert old.overall.accuracy == trained_evaluation.overall.accuracy
