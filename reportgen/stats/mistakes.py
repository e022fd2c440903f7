"""Where a classifier fails: the worst confusion and the most confident mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP_ERRORS = 20


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
