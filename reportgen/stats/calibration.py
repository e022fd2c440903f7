"""Calibration: how far the top-class probability is from the share of right answers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CALIBRATION_BINS = 10


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
