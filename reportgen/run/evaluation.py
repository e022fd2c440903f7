"""The evaluation: every statistic of a network's predictions on the test set, the body of
metrics.json, and predictions.npz, the per-image record later comparisons read.

`score` gathers caret's statistics (stats.caret), the worst confusion and the most confident
mistakes (stats.mistakes), calibration (stats.calibration) and the ranking metrics
(stats.ranking) from per-image probabilities; net.predict makes those probabilities.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.errors import DataError
from reportgen.run import files
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
                    ece=files.nan_for_none(calibration["ece"]),
                ),
                n_test=int(body["n_test"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{source}: not a reportgen metrics.json ({type(e).__name__}: {e})") from e

    def save(self, path: Path) -> Path:
        return files.write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Evaluation:
        return cls.from_json(files.read_json(path), str(path))


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
    return kind(**{f.name: files.nan_for_none(values[f.name]) for f in fields(kind) if f.name in values})


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
    def load(cls, path: Path) -> Predictions:
        """Read predictions.npz back; anything not shaped like one is a DataError."""
        arrays = files.read_npz(path, "predictions")
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
