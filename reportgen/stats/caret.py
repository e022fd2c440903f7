"""caret's confusion-matrix statistics: `caret::confusionMatrix(y_hat, y)`, as the seed judged its model.

The statistics follow caret's source (confusionMatrix.R, sensitivity.R, specificity.R,
posPredValue.R, negPredValue.R, prec_rec.R), e1071's classAgreement (accuracy, kappa) and R's
binom.test and mcnemar.test, including where they give NaN. Tables are caret's layout:
table[i, j] counts images predicted i whose reference (label) is j.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_CLASSES = 10
CONFIDENCE_LEVEL = 0.95  # binom.test's default, the interval caret reports


@dataclass(frozen=True)
class Overall:
    """caret's cm$overall, NaN where caret gives NA or NaN."""

    accuracy: float
    kappa: float  # Cohen's unweighted kappa
    accuracy_lower: float  # the 95% Clopper-Pearson interval of the accuracy
    accuracy_upper: float
    accuracy_null: float  # the no-information rate: the largest reference class's share
    accuracy_p_value: float  # one-sided binomial test, accuracy > no-information rate
    mcnemar_p_value: float  # Bowker's test of symmetry (McNemar's for 2 classes)
    # Not caret's: the ranking metrics (stats.ranking). NaN when a metrics.json written
    # before reportgen computed them is read back.
    log_loss: float = math.nan  # natural log, mean over the test images
    roc_auc_macro: float = math.nan  # unweighted mean of the per-digit one-vs-rest AUCs
    roc_auc_micro: float = math.nan  # every (image, digit) score pooled into one ranking
    average_precision_macro: float = math.nan
    average_precision_micro: float = math.nan


@dataclass(frozen=True)
class ClassStats:
    """caret's cm$byClass row for one class against the rest; NaN where caret gives NA."""

    digit: int  # "class" in metrics.json
    sensitivity: float
    specificity: float
    pos_pred_value: float
    neg_pred_value: float
    precision: float
    recall: float
    f1: float
    prevalence: float
    detection_rate: float
    detection_prevalence: float
    balanced_accuracy: float
    roc_auc: float = math.nan  # this digit's probability ranking its images above the rest
    average_precision: float = math.nan


@dataclass(frozen=True)
class ConfusionStats:
    overall: Overall
    by_class: tuple[ClassStats, ...]


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
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
    from scipy import stats  # a quarter second to import: only where a statistic is computed

    x = _check_table(table).astype(np.float64)
    k = len(x)
    df = k * (k - 1) // 2
    upper = np.triu_indices(k, 1)
    diff = (x - x.T)[upper]
    if correct and k == 2 and np.any(diff != 0):
        diff = np.abs(diff) - 1
    pair_total = (x + x.T)[upper]
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = float(np.sum(diff**2 / pair_total))
    p_value = math.nan if math.isnan(statistic) else float(stats.chi2.sf(statistic, df))
    return statistic, df, p_value


def _overall(table: np.ndarray) -> Overall:
    from scipy import stats

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
    return Overall(
        accuracy=accuracy,
        kappa=kappa,
        accuracy_lower=lower,
        accuracy_upper=upper,
        accuracy_null=null,
        accuracy_p_value=p_value,
        mcnemar_p_value=mcnemar_test(table)[2],
    )


def _one_vs_rest(table: np.ndarray, k: int) -> ClassStats:
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
    return ClassStats(
        digit=k,
        sensitivity=sens,
        specificity=spec,
        pos_pred_value=ppv,
        neg_pred_value=npv,
        precision=precision,
        recall=recall,
        f1=f1,
        prevalence=prev,
        detection_rate=tp / n,
        detection_prevalence=predicted / n,
        balanced_accuracy=_div(sens + spec, 2.0),
    )


def confusion_stats(table: np.ndarray) -> ConfusionStats:
    """caret::confusionMatrix's overall and byClass statistics for a (k, k) table.

    Plain Python floats, NaN where caret gives NA or NaN. by_class is one class against the
    rest for every class, also for 2 classes (where caret reports only its "positive" class,
    the first; by_class[0] is that row).
    """
    table = _check_table(table)
    return ConfusionStats(overall=_overall(table), by_class=tuple(_one_vs_rest(table, k) for k in range(len(table))))
