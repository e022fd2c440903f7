"""Stage 3: predictions on the test set, caret's confusion-matrix statistics, the worst
confusion, the most confident mistakes and calibration; the body of metrics.json.

The seed judged its model with R's `caret::confusionMatrix(y_hat, y)`. The statistics here
follow caret's source (confusionMatrix.R, sensitivity.R, specificity.R, posPredValue.R,
negPredValue.R, prec_rec.R), e1071's classAgreement (accuracy, kappa) and R's binom.test and
mcnemar.test, including where they give NaN. Tables are caret's layout: table[i, j] counts
images predicted i whose reference (label) is j.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mxnet as mx
import numpy as np
from scipy import stats

from reportgen.data import Dataset, to_input
from reportgen.errors import DataError, ReportgenError
from reportgen.runfolder import jsonable

N_CLASSES = 10
TOP_ERRORS = 20
CALIBRATION_BINS = 10
CONFIDENCE_LEVEL = 0.95  # binom.test's default, the interval caret reports

OVERALL_KEYS = ("accuracy", "kappa", "accuracy_lower", "accuracy_upper", "accuracy_null",
                "accuracy_p_value", "mcnemar_p_value")
BY_CLASS_KEYS = ("sensitivity", "specificity", "pos_pred_value", "neg_pred_value", "precision",
                 "recall", "f1", "prevalence", "detection_rate", "detection_prevalence",
                 "balanced_accuracy")
METRICS_KEYS = ("n_test", "confusion_matrix", "overall", "by_class", "worst_pair", "top_errors",
                "calibration")


# -- predictions -------------------------------------------------------------------------------

def predict(net: Any, images: np.ndarray, ctx: mx.Context, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities, float32 (n, 10), for uint8 images (n, 28, 28), in image order.

    Every batch has one shape, min(batch_size, n): the net is hybridized with static_shape,
    so a short last batch would make it rebuild its cached graph. The tail is padded with
    blank images, whose outputs are dropped.
    """
    if batch_size < 1:
        raise ReportgenError(f"--batch-size must be at least 1, not {batch_size}")
    n = len(images)
    probabilities = np.empty((n, N_CLASSES), np.float32)
    if n == 0:
        return probabilities
    size = min(batch_size, n)
    batch = np.zeros((size, 1, 28, 28), np.float32)  # reused; padding rows stay blank
    for start in range(0, n, size):
        part = images[start:start + size]
        batch[:len(part)] = to_input(part)
        batch[len(part):] = 0
        out = net(mx.nd.array(batch, ctx=ctx))
        probabilities[start:start + len(part)] = out[:len(part)].asnumpy()
    return probabilities


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray,
                     n_classes: int = N_CLASSES) -> np.ndarray:
    """int64 (n_classes, n_classes): rows are predictions, columns the reference (caret's layout)."""
    predictions = np.asarray(predictions).astype(np.int64).ravel()
    labels = np.asarray(labels).astype(np.int64).ravel()
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    for name, values in (("prediction", predictions), ("label", labels)):
        bad = np.flatnonzero((values < 0) | (values >= n_classes))
        if bad.size:
            raise ValueError(f"{name} {values[bad[0]]} at index {bad[0]} is outside 0-{n_classes - 1}")
    cells = np.bincount(predictions * n_classes + labels, minlength=n_classes * n_classes)
    return cells.reshape(n_classes, n_classes).astype(np.int64)


# -- caret's statistics ------------------------------------------------------------------------

def _check_table(table: np.ndarray) -> np.ndarray:
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] < 2:
        raise ValueError(f"a confusion table must be square with at least 2 classes, not {table.shape}")
    if np.any(table < 0) or np.any(table != np.round(table)):
        raise ValueError("a confusion table holds non-negative whole counts")
    if table.sum() == 0:
        raise ValueError("the confusion table is empty")
    return table.astype(np.int64)


def _ratio(numer: float, denom: float) -> float:
    # caret's ifelse(denom > 0, numer / denom, NA)
    return numer / denom if denom > 0 else math.nan


def _div(numer: float, denom: float) -> float:
    # R's `/` on doubles: 0/0 is NaN and NaN propagates (numerators here never exceed denominators)
    if math.isnan(numer) or math.isnan(denom):
        return math.nan
    return numer / denom if denom != 0 else math.nan


def mcnemar_test(table: np.ndarray, correct: bool = True) -> tuple[float, int, float]:
    """R's mcnemar.test(table): (statistic, df, p-value).

    For k > 2 classes this is Bowker's test of symmetry, sum over i < j of
    (n_ij - n_ji)^2 / (n_ij + n_ji) on k(k-1)/2 df. For 2x2 with `correct`, the continuity
    correction (|b - c| - 1)^2 / (b + c), which R applies only when b != c. A pair empty
    both ways contributes 0/0 = NaN, so the statistic and p-value are NaN, as in R.
    """
    x = _check_table(table).astype(np.float64)
    k = len(x)
    df = k * (k - 1) // 2
    upper = np.triu_indices(k, 1)
    diff = (x - x.T)[upper]
    if correct and k == 2 and np.any(diff != 0):
        diff = np.abs(diff) - 1
    pair_total = (x + x.T)[upper]
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = float(np.sum(diff ** 2 / pair_total))
    p_value = math.nan if math.isnan(statistic) else float(stats.chi2.sf(statistic, df))
    return statistic, df, p_value


def _overall(table: np.ndarray) -> dict[str, float]:
    n = int(table.sum())
    correct = int(np.trace(table))
    rows, cols = table.sum(axis=1), table.sum(axis=0)  # predicted, reference totals
    accuracy = correct / n
    # e1071::classAgreement: Cohen's unweighted kappa from the row and column margins.
    chance = float(np.sum((rows / n) * (cols / n)))
    kappa = _div(accuracy - chance, 1 - chance)
    # binom.test(correct, n)$conf.int: Clopper-Pearson, two-sided.
    alpha = (1 - CONFIDENCE_LEVEL) / 2
    lower = 0.0 if correct == 0 else float(stats.beta.ppf(alpha, correct, n - correct + 1))
    upper = 1.0 if correct == n else float(stats.beta.ppf(1 - alpha, correct + 1, n - correct))
    # caret's no-information rate: max(apply(x, 2, sum) / sum(x)), the largest reference class.
    null = float(cols.max() / n)
    p_value = float(stats.binomtest(correct, n, p=null, alternative="greater").pvalue)
    return {
        "accuracy": accuracy, "kappa": kappa, "accuracy_lower": lower, "accuracy_upper": upper,
        "accuracy_null": null, "accuracy_p_value": p_value,
        "mcnemar_p_value": mcnemar_test(table)[2],
    }


def _one_vs_rest(table: np.ndarray, k: int) -> dict[str, Any]:
    """caret's byClass row for class k: class k is "positive", every other class "negative"."""
    n = int(table.sum())
    tp = int(table[k, k])
    predicted = int(table[k, :].sum())
    present = int(table[:, k].sum())
    fp, fn = predicted - tp, present - tp
    tn = n - tp - fp - fn
    sens = _ratio(tp, tp + fn)  # NA when the class is absent from the reference
    spec = _ratio(tn, tn + fp)  # NA when every reference image is of this class
    prev = present / n
    # caret computes the predictive values from sensitivity, specificity and prevalence, not
    # from the counts; with the data's prevalence they equal TP/(TP+FP) and TN/(TN+FN) except
    # that an absent class makes them NA (NA * 0 is NA in R) where the counts would not.
    ppv = _div(sens * prev, sens * prev + (1 - spec) * (1 - prev))
    npv = _div(spec * (1 - prev), (1 - sens) * prev + spec * (1 - prev))
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, present)
    f1 = _div(2 * precision * recall, precision + recall)  # caret's F_meas, beta = 1
    return {
        "class": k, "sensitivity": sens, "specificity": spec,
        "pos_pred_value": ppv, "neg_pred_value": npv,
        "precision": precision, "recall": recall, "f1": f1, "prevalence": prev,
        "detection_rate": tp / n, "detection_prevalence": predicted / n,
        "balanced_accuracy": _div(sens + spec, 2.0),
    }


def confusion_stats(table: np.ndarray) -> dict[str, Any]:
    """caret::confusionMatrix's overall and byClass statistics for a (k, k) table.

    Returns {"overall": {accuracy, kappa, accuracy_lower, accuracy_upper, accuracy_null,
    accuracy_p_value, mcnemar_p_value}, "by_class": [{"class": k, sensitivity, ...}, ...]},
    plain Python floats, NaN where caret gives NA or NaN. by_class is one class against the
    rest for every class, also for 2 classes (where caret reports only its "positive" class,
    the first; by_class[0] is that row).
    """
    table = _check_table(table)
    return {"overall": _overall(table),
            "by_class": [_one_vs_rest(table, k) for k in range(len(table))]}


# -- where the network fails -------------------------------------------------------------------

def worst_pair(table: np.ndarray, predictions: np.ndarray, labels: np.ndarray,
               probabilities: np.ndarray) -> dict[str, Any]:
    """The largest off-diagonal cell of the table and the test images in it.

    Ties go as in the seed's `which(errors == max(errors), arr.ind = TRUE)[1, ]`, R's
    column-major order: the smallest reference class first, then the smallest prediction.
    Indices are every image of the cell, in test-set order, with its probability vector.
    A table without errors gives prediction and reference None, count 0 and empty lists.
    """
    errors = np.array(table, dtype=np.int64)
    np.fill_diagonal(errors, 0)
    count = int(errors.max())
    if count == 0:
        return {"prediction": None, "reference": None, "count": 0, "indices": [], "probabilities": []}
    # argwhere on the transpose lists (reference, prediction) pairs in order: column-major.
    reference, prediction = (int(v) for v in np.argwhere(errors.T == count)[0])
    indices = np.flatnonzero((np.asarray(predictions) == prediction) & (np.asarray(labels) == reference))
    if len(indices) != count:
        raise ValueError(f"the table says {count} images predicted {prediction} are {reference}, "
                         f"the predictions and labels hold {len(indices)}")
    return {
        "prediction": prediction, "reference": reference, "count": count,
        "indices": [int(i) for i in indices],
        "probabilities": np.asarray(probabilities, np.float64)[indices].tolist(),
    }


def top_errors(predictions: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
               k: int = TOP_ERRORS) -> list[dict[str, Any]]:
    """The k mistakes with the highest probability on their (wrong) predicted class.

    Highest confidence first; equal confidences keep test-set order.
    """
    predictions = np.asarray(predictions).astype(np.int64)
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, np.float64)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:k]
    return [{"index": int(i), "label": int(labels[i]), "prediction": int(predictions[i]),
             "confidence": float(probabilities[i, predictions[i]]),
             "probabilities": probabilities[i].tolist()} for i in order]


def calibration(probabilities: np.ndarray, labels: np.ndarray,
                n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """A reliability table over the top-class probability, and the expected calibration error.

    Bins are [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0], 1.0 in the last. confidence is the mean
    top probability in a bin, accuracy the share whose top class is the label (both None for
    an empty bin). ECE = sum over bins of count/n * |accuracy - confidence|; NaN for no images.
    """
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels).astype(np.int64)
    top = probabilities.max(axis=1) if len(probabilities) else np.empty(0)
    hit = probabilities.argmax(axis=1) == labels if len(probabilities) else np.empty(0, bool)
    edges = np.arange(n_bins + 1) / n_bins  # k/10 exactly as written, so 0.3 falls in [0.3, 0.4)
    which = np.digitize(top, edges[1:-1])  # 0..n_bins-1; 1.0 (and above) in the last bin
    n = len(top)
    bins, ece = [], 0.0
    for b in range(n_bins):
        inside = which == b
        count = int(inside.sum())
        confidence = float(top[inside].mean()) if count else None
        accuracy = float(hit[inside].mean()) if count else None
        if count:
            ece += count / n * abs(accuracy - confidence)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
                     "confidence": confidence, "accuracy": accuracy})
    return {"bins": bins, "ece": ece if n else math.nan}


# -- the stage's value -------------------------------------------------------------------------

def _nan_for_none(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (math.nan if v is None else v) for k, v in row.items()}


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make field-wise == ambiguous
class Evaluation:
    probabilities: np.ndarray | None  # (n, 10) float32; None when read from metrics.json
    predictions: np.ndarray | None  # (n,) int64, argmax of probabilities
    labels: np.ndarray | None  # (n,) int64
    confusion_matrix: np.ndarray  # (10, 10) int64, rows predictions, columns reference
    overall: dict[str, float]  # OVERALL_KEYS, NaN where caret gives NaN
    by_class: list[dict[str, Any]]  # {"class": k, BY_CLASS_KEYS...} per class
    worst_pair: dict[str, Any]  # see worst_pair()
    top_errors: list[dict[str, Any]]
    calibration: dict[str, Any]
    n_test: int

    def to_json(self) -> dict[str, Any]:
        """The body of metrics.json; NaN written as None (JSON null)."""
        return jsonable({
            "n_test": self.n_test,
            "confusion_matrix": self.confusion_matrix,
            "overall": self.overall,
            "by_class": self.by_class,
            "worst_pair": self.worst_pair,
            "top_errors": self.top_errors,
            "calibration": self.calibration,
        })

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Evaluation:
        """An Evaluation from metrics.json's body; per-image arrays are None, null stats NaN."""
        missing = [key for key in METRICS_KEYS if key not in d]
        if missing:
            raise DataError(f"metrics: no '{missing[0]}' entry (not a reportgen metrics.json)")
        return cls(
            probabilities=None, predictions=None, labels=None,
            confusion_matrix=np.asarray(d["confusion_matrix"], dtype=np.int64),
            overall=_nan_for_none(d["overall"]),
            by_class=[_nan_for_none(row) for row in d["by_class"]],
            worst_pair=dict(d["worst_pair"]),
            top_errors=[dict(row) for row in d["top_errors"]],
            calibration=d["calibration"],
            n_test=int(d["n_test"]),
        )


def run(net: Any, dataset: Dataset, ctx: mx.Context, batch_size: int = 1000) -> Evaluation:
    """Predict every test image and gather all the statistics.

    The predicted class is the first largest probability (R's max.col, which the seed used,
    breaks exact ties at random).
    """
    probabilities = predict(net, dataset.test_x, ctx, batch_size)
    predictions = probabilities.argmax(axis=1).astype(np.int64)
    labels = np.asarray(dataset.test_y).astype(np.int64)
    table = confusion_matrix(predictions, labels)
    statistics = confusion_stats(table)
    return Evaluation(
        probabilities=probabilities, predictions=predictions, labels=labels,
        confusion_matrix=table,
        overall=statistics["overall"], by_class=statistics["by_class"],
        worst_pair=worst_pair(table, predictions, labels, probabilities),
        top_errors=top_errors(predictions, labels, probabilities),
        calibration=calibration(probabilities, labels),
        n_test=len(labels),
    )
