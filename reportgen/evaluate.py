"""Stage 3: predictions on the test set, caret's confusion-matrix statistics, the worst
confusion, the most confident mistakes, calibration, and the ranking metrics (log loss,
one-vs-rest ROC and precision-recall, reportgen.curves); the body of metrics.json, and
predictions.npz, the per-image record later comparisons read.

The seed judged its model with R's `caret::confusionMatrix(y_hat, y)`. The statistics here
follow caret's source (confusionMatrix.R, sensitivity.R, specificity.R, posPredValue.R,
negPredValue.R, prec_rec.R), e1071's classAgreement (accuracy, kappa) and R's binom.test and
mcnemar.test, including where they give NaN. Tables are caret's layout: table[i, j] counts
images predicted i whose reference (label) is j.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reportgen import curves, runfolder
from reportgen.curves import RankingMetrics
from reportgen.data import Dataset, batches
from reportgen.errors import DataError, ReportgenError

if TYPE_CHECKING:
    import mxnet as mx

    from reportgen.model import Network

N_CLASSES = 10
TOP_ERRORS = 20
CALIBRATION_BINS = 10
CONFIDENCE_LEVEL = 0.95  # binom.test's default, the interval caret reports
PREDICTIONS = "predictions.npz"


# -- the values this stage hands on ------------------------------------------------------------


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
    # Not caret's: the ranking metrics (reportgen.curves). NaN when a metrics.json written
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


@dataclass(frozen=True, eq=False)
class WorstPair:
    """The largest off-diagonal cell: `count` images of `reference` predicted `prediction`."""

    prediction: int | None  # None, with count 0, when there is no error at all
    reference: int | None
    count: int
    indices: tuple[int, ...]  # every image of the cell, in test-set order
    probabilities: np.ndarray  # (count, classes) float64, one row per image


@dataclass(frozen=True)
class Mistake:
    index: int  # in the test set
    label: int
    prediction: int
    confidence: float  # the probability given to the (wrong) prediction
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    confidence: float | None  # mean top probability in the bin; None when empty
    accuracy: float | None  # share right in the bin; None when empty


@dataclass(frozen=True)
class Calibration:
    bins: tuple[CalibrationBin, ...]
    ece: float  # expected calibration error; NaN with no images


# -- predictions -------------------------------------------------------------------------------


def predict(
    forward: Any, images: np.ndarray, ctx: mx.Context, pixels: str = "unit", batch_size: int = 1000
) -> np.ndarray:
    """Class probabilities, float32 (n, 10), for uint8 images (n, 28, 28), in image order.

    `forward` maps a batch to probabilities; every batch has one shape (data.batches), so a
    network hybridized with static_shape never rebuilds its cached graph.
    """
    import mxnet as mx

    if batch_size < 1:
        raise ReportgenError(f"--batch-size must be at least 1, not {batch_size}")
    probabilities = np.empty((len(images), N_CLASSES), np.float32)
    for start, count, batch in batches(images, max(1, min(batch_size, len(images))), pixels):
        out = forward(mx.nd.array(batch, ctx=ctx))
        probabilities[start : start + count] = out[:count].asnumpy()
    return probabilities


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


# -- where the network fails -------------------------------------------------------------------


def worst_pair(table: np.ndarray, predictions: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> WorstPair:
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
        return WorstPair(None, None, 0, (), np.zeros((0, len(errors))))
    # argwhere on the transpose lists (reference, prediction) pairs in order: column-major.
    reference, prediction = (int(v) for v in np.argwhere(errors.T == count)[0])
    indices = np.flatnonzero((np.asarray(predictions) == prediction) & (np.asarray(labels) == reference))
    if len(indices) != count:
        raise ValueError(
            f"the table says {count} images predicted {prediction} are {reference}, "
            f"the predictions and labels hold {len(indices)}"
        )
    return WorstPair(
        prediction=prediction,
        reference=reference,
        count=count,
        indices=tuple(int(i) for i in indices),
        probabilities=np.asarray(probabilities, np.float64)[indices],
    )


def top_errors(
    predictions: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, k: int = TOP_ERRORS
) -> tuple[Mistake, ...]:
    """The k mistakes with the highest probability on their (wrong) predicted class.

    Highest confidence first; equal confidences keep test-set order.
    """
    predictions = np.asarray(predictions).astype(np.int64)
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, np.float64)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:k]
    return tuple(
        Mistake(
            index=int(i),
            label=int(labels[i]),
            prediction=int(predictions[i]),
            confidence=float(probabilities[i, predictions[i]]),
            probabilities=tuple(probabilities[i].tolist()),
        )
        for i in order
    )


def calibration(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = CALIBRATION_BINS) -> Calibration:
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
        if accuracy is not None and confidence is not None:
            ece += count / n * abs(accuracy - confidence)
        bins.append(
            CalibrationBin(
                lower=float(edges[b]), upper=float(edges[b + 1]), count=count, confidence=confidence, accuracy=accuracy
            )
        )
    return Calibration(bins=tuple(bins), ece=ece if n else math.nan)


# -- metrics.json -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make field-wise == ambiguous
class Evaluation:
    probabilities: np.ndarray | None  # (n, 10) float32; None when read from metrics.json
    predictions: np.ndarray | None  # (n,) int64, argmax of probabilities
    labels: np.ndarray | None  # (n,) int64
    confusion_matrix: np.ndarray  # (10, 10) int64, rows predictions, columns reference
    overall: Overall
    by_class: tuple[ClassStats, ...]
    worst_pair: WorstPair
    top_errors: tuple[Mistake, ...]
    calibration: Calibration
    n_test: int
    # The ranking metrics with their thinned curves, from the per-image probabilities; None
    # when read from metrics.json alone (with_predictions brings them back).
    ranking: RankingMetrics | None = None

    def per_image(self) -> Predictions:
        """The per-image arrays, as predictions.npz holds them."""
        if self.probabilities is None or self.predictions is None or self.labels is None:
            raise ValueError("this evaluation was read from metrics.json: it has no per-image arrays")
        return Predictions(labels=self.labels, predictions=self.predictions, probabilities=self.probabilities)

    def with_predictions(self, per_image: Predictions, source: str = PREDICTIONS) -> Evaluation:
        """This evaluation with its per-image arrays and curves back, from predictions.npz.

        The arrays must give this evaluation's confusion matrix: a predictions.npz from
        another run or another test set is a DataError naming `source`.
        """
        table = confusion_matrix(per_image.predictions, per_image.labels, len(self.confusion_matrix))
        if len(per_image.labels) != self.n_test or not np.array_equal(table, self.confusion_matrix):
            raise DataError(
                f"{source}: its {len(per_image.labels):,} predictions do not give metrics.json's "
                f"confusion matrix ({self.n_test:,} test images): files of different runs?"
            )
        return replace(
            self,
            probabilities=per_image.probabilities,
            predictions=per_image.predictions,
            labels=per_image.labels,
            ranking=curves.ranking_metrics(per_image.probabilities, per_image.labels),
        )

    def to_json(self) -> dict[str, Any]:
        """The body of metrics.json; NaN written as None (JSON null)."""
        return runfolder.jsonable(
            {
                "n_test": self.n_test,
                "confusion_matrix": self.confusion_matrix,
                "overall": asdict(self.overall),
                "by_class": [_class_row(row) for row in self.by_class],
                "worst_pair": {**asdict(self.worst_pair), "indices": list(self.worst_pair.indices)},
                "top_errors": [asdict(mistake) for mistake in self.top_errors],
                "calibration": asdict(self.calibration),
            }
        )

    @classmethod
    def from_json(cls, body: Any, source: str = "metrics.json") -> Evaluation:
        """An Evaluation from metrics.json's body; per-image arrays are None, null stats NaN.

        Anything not shaped like reportgen's metrics.json is a DataError naming `source`.
        """
        try:
            worst = body["worst_pair"]
            calibration = body["calibration"]
            table = np.asarray(body["confusion_matrix"], dtype=np.int64)
            return cls(
                probabilities=None,
                predictions=None,
                labels=None,
                confusion_matrix=table,
                overall=_record(Overall, body["overall"]),
                by_class=tuple(_record(ClassStats, {**row, "digit": row["class"]}) for row in body["by_class"]),
                worst_pair=WorstPair(
                    prediction=worst["prediction"],
                    reference=worst["reference"],
                    count=int(worst["count"]),
                    indices=tuple(int(i) for i in worst["indices"]),
                    probabilities=np.asarray(worst["probabilities"], np.float64).reshape(
                        len(worst["indices"]), len(table)
                    ),
                ),
                top_errors=tuple(
                    _record(Mistake, {**row, "probabilities": tuple(row["probabilities"])})
                    for row in body["top_errors"]
                ),
                calibration=Calibration(
                    bins=tuple(CalibrationBin(**bin_) for bin_ in calibration["bins"]),
                    ece=runfolder.nan_for_none(calibration["ece"]),
                ),
                n_test=int(body["n_test"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{source}: not a reportgen metrics.json ({type(e).__name__}: {e})") from None

    def save(self, path: Path) -> Path:
        return runfolder.write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Evaluation:
        return cls.from_json(runfolder.read_json(path), str(path))


def _class_row(row: ClassStats) -> dict[str, Any]:
    values = asdict(row)
    return {"class": values.pop("digit"), **values}


def _record(kind: type, values: dict[str, Any]) -> Any:
    """A dataclass from a JSON object: its fields, null read as NaN; a field with a default
    (added after metrics.json files were written without it) may be missing."""
    required = [f.name for f in fields(kind) if f.default is MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        raise KeyError(missing[0])
    return kind(**{f.name: runfolder.nan_for_none(values[f.name]) for f in fields(kind) if f.name in values})


def score(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Every statistic of the evaluation from per-image probabilities (n, 10) and labels (n,).

    The predicted class is the first largest probability (R's max.col, which the seed used,
    breaks exact ties at random).
    """
    probabilities = np.asarray(probabilities)
    predictions = probabilities.argmax(axis=1).astype(np.int64)
    labels = np.asarray(labels).astype(np.int64)
    table = confusion_matrix(predictions, labels)
    statistics = confusion_stats(table)
    ranking = curves.ranking_metrics(probabilities, labels)
    overall = replace(statistics.overall, **{key: getattr(ranking, key) for key in curves.SCALAR_KEYS})
    by_class = tuple(
        replace(row, roc_auc=ranking.roc_auc[row.digit], average_precision=ranking.average_precision[row.digit])
        for row in statistics.by_class
    )
    return Evaluation(
        probabilities=probabilities,
        predictions=predictions,
        labels=labels,
        confusion_matrix=table,
        overall=overall,
        by_class=by_class,
        worst_pair=worst_pair(table, predictions, labels, probabilities),
        top_errors=top_errors(predictions, labels, probabilities),
        calibration=calibration(probabilities, labels),
        n_test=len(labels),
        ranking=ranking,
    )


def run(network: Network, dataset: Dataset, ctx: mx.Context, batch_size: int = 1000) -> Evaluation:
    """Predict every test image, fed as the network wants, and gather all the statistics."""
    return score(predict(network.forward, dataset.test_x, ctx, network.pixels, batch_size), dataset.test_y)


# -- predictions.npz --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make field-wise == ambiguous
class Predictions:
    """Every test image's label, predicted class and probabilities, in test-set order: what
    a later comparison reads instead of running the model again."""

    labels: np.ndarray  # (n,) int64
    predictions: np.ndarray  # (n,) int64, the first largest probability
    probabilities: np.ndarray  # (n, 10) float32

    def save(self, path: Path) -> Path:
        """predictions.npz, atomically, the same bytes for the same arrays."""
        arrays: dict[str, np.ndarray] = {
            "labels": np.asarray(self.labels, np.int64),
            "predictions": np.asarray(self.predictions, np.int64),
            "probabilities": np.asarray(self.probabilities, np.float32),
        }
        return runfolder.write_npz(path, arrays)

    @classmethod
    def load(cls, path: Path) -> Predictions:
        """Read predictions.npz back; anything not shaped like one is a DataError."""
        arrays = runfolder.read_npz(path, "predictions")
        for name in ("labels", "predictions", "probabilities"):
            if name not in arrays:
                raise DataError(f"{path}: no array '{name}' (not a reportgen predictions file)")
        labels, predictions, probabilities = arrays["labels"], arrays["predictions"], arrays["probabilities"]
        n = len(labels)
        if (
            labels.ndim != 1
            or predictions.shape != (n,)
            or probabilities.shape != (n, N_CLASSES)
            or not np.issubdtype(labels.dtype, np.integer)
            or not np.issubdtype(predictions.dtype, np.integer)
            or not np.issubdtype(probabilities.dtype, np.floating)
        ):
            raise DataError(
                f"{path}: expected labels and predictions of n integers and probabilities of n x "
                f"{N_CLASSES} floats, found {labels.dtype} {labels.shape}, {predictions.dtype} "
                f"{predictions.shape}, {probabilities.dtype} {probabilities.shape}"
            )
        if n and not np.array_equal(predictions, probabilities.argmax(axis=1)):
            raise DataError(f"{path}: its predictions are not the largest of its probabilities")
        if n and ((labels < 0) | (labels >= N_CLASSES)).any():
            raise DataError(f"{path}: a label outside 0-{N_CLASSES - 1}")
        return cls(labels.astype(np.int64), predictions.astype(np.int64), probabilities.astype(np.float32))
