"""The evaluation: every statistic of a network's predictions on the test set, the body of
metrics.json, and predictions.npz, the per-image record later comparisons read.

`score` gathers caret's statistics (stats.caret), the worst confusion and the most confident
mistakes (stats.mistakes), calibration (stats.calibration) and the ranking metrics
(stats.ranking) from per-image probabilities; net.predict makes those probabilities.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.errors import DataError
from reportgen.run import files, schema
from reportgen.stats.calibration import Calibration, CalibrationBin, calibration
from reportgen.stats.caret import N_CLASSES, ClassStats, Overall, confusion_matrix, confusion_stats
from reportgen.stats.mistakes import Mistake, WorstPair, top_errors, worst_pair
from reportgen.stats.ranking import SCALAR_KEYS, RankingMetrics, ranking_metrics

PREDICTIONS = "predictions.npz"

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
            ranking=ranking_metrics(per_image.probabilities, per_image.labels),
        )

    def to_json(self) -> dict[str, Any]:
        """The body of metrics.json; NaN written as None (JSON null)."""
        return files.jsonable(
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

        Every value's type and range is checked first: anything not shaped like reportgen's
        metrics.json is a DataError naming `source` and the value.
        """
        try:
            return _read_evaluation(body)
        except schema.Invalid as e:
            raise DataError(f"{source}: not a reportgen metrics.json ({e})") from e

    def save(self, path: Path) -> Path:
        return files.write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Evaluation:
        return cls.from_json(files.read_json(path), str(path))


def _class_row(row: ClassStats) -> dict[str, Any]:
    values = asdict(row)
    return {"class": values.pop("digit"), **values}


# -- reading metrics.json, value by value ---------------------------------------------------

# The range of each statistic metrics.json holds; any other is a proportion, in [0, 1].
_RANGES = {"kappa": (-math.inf, 1.0), "log_loss": (0.0, math.inf)}


def _statistics(kind: type, body: Any, where: str, **known: Any) -> Any:
    """A dataclass of statistics from a JSON object: each field a number in its range or null
    (NaN); a field with a default (added after metrics.json files were written without it)
    may be missing. `known` gives fields read otherwise."""
    values = dict(known)
    for f in fields(kind):
        if f.name in known:
            continue
        if f.name not in schema.obj(body, where) and f.default is not MISSING:
            continue
        low, high = _RANGES.get(f.name, (0.0, 1.0))
        values[f.name] = schema.number(schema.get(body, f.name, where), f"{where}.{f.name}", low, high, null=True)
    return kind(**values)


def _digit(value: Any, where: str) -> int:
    return schema.integer(value, where, 0, N_CLASSES - 1)


def _optional_digit(value: Any, where: str) -> int | None:
    return None if value is None else _digit(value, where)


def _optional_proportion(value: Any, where: str) -> float | None:
    return None if value is None else schema.proportion(value, where)


def _probabilities(value: Any, where: str) -> list[float]:
    return schema.each(value, where, schema.proportion, N_CLASSES)


def _worst_pair(body: Any, n: int) -> WorstPair:
    where = "worst_pair"
    indices = schema.each(schema.get(body, "indices", where), f"{where}.indices", _index(n))
    rows = schema.each(schema.get(body, "probabilities", where), f"{where}.probabilities", _probabilities)
    if len(rows) != len(indices):
        raise schema.Invalid(f"{where}: {len(rows):,} rows of probabilities for {len(indices):,} images")
    return WorstPair(
        prediction=schema.field(body, "prediction", where, _optional_digit),
        reference=schema.field(body, "reference", where, _optional_digit),
        count=schema.field(body, "count", where, lambda v, w: schema.integer(v, w, 0, n)),
        indices=tuple(indices),
        probabilities=np.array(rows, np.float64).reshape(len(indices), N_CLASSES),
    )


def _index(n: int) -> Any:
    """A reader of test-set indices, 0 to n - 1."""
    return lambda value, where: schema.integer(value, where, 0, n - 1)


def _mistake(n: int) -> Any:
    def read(body: Any, where: str) -> Mistake:
        return Mistake(
            index=schema.field(body, "index", where, _index(n)),
            label=schema.field(body, "label", where, _digit),
            prediction=schema.field(body, "prediction", where, _digit),
            confidence=schema.field(body, "confidence", where, schema.proportion),
            probabilities=tuple(schema.field(body, "probabilities", where, _probabilities)),
        )

    return read


def _calibration(body: Any, n: int) -> Calibration:
    def read_bin(value: Any, where: str) -> CalibrationBin:
        return CalibrationBin(
            lower=schema.field(value, "lower", where, schema.proportion),
            upper=schema.field(value, "upper", where, schema.proportion),
            count=schema.field(value, "count", where, lambda v, w: schema.integer(v, w, 0, n)),
            confidence=schema.field(value, "confidence", where, _optional_proportion),
            accuracy=schema.field(value, "accuracy", where, _optional_proportion),
        )

    bins = schema.get(body, "bins", "calibration")
    schema.array(bins, "calibration.bins", most=1000)
    return Calibration(
        bins=tuple(schema.each(bins, "calibration.bins", read_bin)),
        ece=schema.field(body, "ece", "calibration", lambda v, w: schema.proportion(v, w, null=True)),
    )


def _read_evaluation(body: Any) -> Evaluation:
    n = schema.field(body, "n_test", "", lambda v, w: schema.integer(v, w, 1))
    rows = schema.each(
        schema.get(body, "confusion_matrix"),
        "confusion_matrix",
        lambda row, where: schema.each(row, where, lambda v, w: schema.integer(v, w, 0, n), N_CLASSES),
        N_CLASSES,
    )
    table = np.array(rows, np.int64).reshape(N_CLASSES, N_CLASSES)
    if int(table.sum()) != n:
        raise schema.Invalid(f"confusion_matrix: its cells add up to {int(table.sum()):,}, n_test is {n:,}")

    def class_row(value: Any, where: str) -> ClassStats:
        return _statistics(ClassStats, value, where, digit=schema.field(value, "class", where, _digit))

    by_class = tuple(schema.each(schema.get(body, "by_class"), "by_class", class_row, N_CLASSES))
    if [row.digit for row in by_class] != list(range(N_CLASSES)):
        raise schema.Invalid(f"by_class: classes {[row.digit for row in by_class]}, expected 0 to {N_CLASSES - 1}")
    return Evaluation(
        probabilities=None,
        predictions=None,
        labels=None,
        confusion_matrix=table,
        overall=_statistics(Overall, schema.get(body, "overall"), "overall"),
        by_class=by_class,
        worst_pair=_worst_pair(schema.get(body, "worst_pair"), n),
        top_errors=tuple(schema.each(schema.get(body, "top_errors"), "top_errors", _mistake(n))),
        calibration=_calibration(schema.get(body, "calibration"), n),
        n_test=n,
    )


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
    ranking = ranking_metrics(probabilities, labels)
    overall = replace(statistics.overall, **{key: getattr(ranking, key) for key in SCALAR_KEYS})
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
        return files.write_npz(path, arrays)

    @classmethod
    def load(cls, path: Path, n: int | None = None) -> Predictions:
        """Read predictions.npz back; anything not shaped like one is a DataError.

        The arrays' shapes are checked from their headers before any is read (with `n`, the
        number of test images they must cover); then their values: probabilities finite, in
        [0, 1], each row summing to 1; labels in 0-9; predictions the largest probability.
        """
        path = Path(path)
        names = ("labels", "predictions", "probabilities")
        arrays = files.read_npz(path, "predictions", names, lambda headers: _check_headers(path, headers, n))
        return _checked(path, arrays["labels"], arrays["predictions"], arrays["probabilities"])


# A row of float32 probabilities from a softmax sums to 1 within about 1e-6.
SUM_TOLERANCE = 1e-3


def _check_headers(path: Path, headers: dict[str, files.Header], n: int | None) -> None:
    for name in ("labels", "predictions", "probabilities"):
        if name not in headers:
            raise DataError(f"{path}: no array '{name}' (not a reportgen predictions file)")
    (labels, labels_type), (predictions, predictions_type), (probabilities, probabilities_type) = (
        headers[name] for name in ("labels", "predictions", "probabilities")
    )
    rows = labels[0] if len(labels) == 1 else -1
    if (
        len(labels) != 1
        or predictions != (rows,)
        or probabilities != (rows, N_CLASSES)
        or labels_type.kind not in "iu"
        or predictions_type.kind not in "iu"
        or probabilities_type.kind != "f"
    ):
        raise DataError(
            f"{path}: expected labels and predictions of n integers and probabilities of n x "
            f"{N_CLASSES} floats, found {labels_type} {labels}, {predictions_type} "
            f"{predictions}, {probabilities_type} {probabilities}"
        )
    if rows == 0:
        raise DataError(f"{path}: holds no test image")
    if n is not None and rows != n:
        raise DataError(f"{path}: predictions for {rows:,} test images, expected {n:,}")


def _checked(path: Path, labels: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray) -> Predictions:
    finite = np.isfinite(probabilities)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise DataError(f"{path}: probability {probabilities[row][~finite[row]][0]} for test image {row}")
    outside = (probabilities < 0) | (probabilities > 1)
    if outside.any():
        row = int(np.flatnonzero(outside.any(axis=1))[0])
        raise DataError(f"{path}: probability {probabilities[row][outside[row]][0]:g} for test image {row}")
    sums = probabilities.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(f"{path}: the probabilities of test image {row} add up to {sums[row]:.6g}, not 1")
    if ((labels < 0) | (labels >= N_CLASSES)).any():
        raise DataError(f"{path}: a label outside 0-{N_CLASSES - 1}")
    if not np.array_equal(predictions, probabilities.argmax(axis=1)):
        raise DataError(f"{path}: its predictions are not the largest of its probabilities")
    return Predictions(labels.astype(np.int64), predictions.astype(np.int64), probabilities.astype(np.float32))
