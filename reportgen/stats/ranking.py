"""The evaluation's ranking metrics: log loss, one-vs-rest ROC and precision-recall curves,
their areas per class and averaged, and the curves thinned for drawing.

Definitions follow scikit-learn 1.7 (sklearn.metrics), which the tests compare against:
a class's scores are its column of the probabilities, its positives the images with that
label. Tied scores form one threshold, so a tie between a positive and a negative is one
diagonal step of the ROC curve, as in sklearn. What is undefined (a class with no positive
images has no recall) is NaN here, quietly; sklearn warns, and gives NaN for a ROC AUC but
0 for such a class's average precision.

Pure numpy: no mxnet, no sklearn.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

MAX_CURVE_POINTS = 400  # per drawn curve; a 10,000-image curve has up to 10,001 points

SCALAR_KEYS = ("log_loss", "roc_auc_macro", "roc_auc_micro", "average_precision_macro", "average_precision_micro")
PER_CLASS_KEYS = ("roc_auc", "average_precision")
CURVE_KEYS = ("roc_curves", "pr_curves", "roc_curve_micro", "pr_curve_micro")


# -- checking inputs ---------------------------------------------------------------------------


def _check(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"probabilities must be (n, k) with k >= 2, not {probabilities.shape}")
    if labels.shape != (len(probabilities),):
        raise ValueError(f"{len(probabilities)} rows of probabilities but labels of shape {labels.shape}")
    if len(labels) == 0:
        raise ValueError("no images")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, not {labels.dtype}")
    k = probabilities.shape[1]
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        raise ValueError(f"label {labels[bad[0]]} at index {bad[0]} is outside 0-{k - 1}")
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("probabilities must be finite")
    return probabilities, labels.astype(np.int64)


def _check_binary(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    positive = np.asarray(positive)
    if scores.ndim != 1 or positive.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} must be equal 1-d shapes")
    if positive.dtype != np.bool_:
        raise ValueError(f"positive must be a bool array, not {positive.dtype}")
    if scores.size == 0:
        raise ValueError("no scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return scores.astype(np.float64), positive  # float32 -> float64 is exact: ties stay ties


# -- log loss ----------------------------------------------------------------------------------


def log_loss(probabilities: np.ndarray, labels: np.ndarray, eps: float | None = None) -> float:
    """Mean over images of -ln p(true class), natural log.

    Each probability is first clipped to [eps, 1 - eps], so an exact 0 for the true class
    (float32 softmax underflows) costs -ln(eps) instead of infinity. eps=None takes the
    machine epsilon of the probabilities' dtype: 2**-52 for float64, 2**-23 for float32
    (2**-52 for anything not floating), which is what sklearn.metrics.log_loss does since
    1.5. Rows are not renormalised (sklearn stopped doing that too).
    """
    probabilities, labels = _check(probabilities, labels)
    if np.any((probabilities < 0) | (probabilities > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    if eps is None:
        dtype = probabilities.dtype if np.issubdtype(probabilities.dtype, np.floating) else np.float64
        eps = float(np.finfo(dtype).eps)
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), not {eps}")
    true_class = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return float(np.mean(-np.log(np.clip(true_class, eps, 1 - eps))))


# -- one class against the rest ----------------------------------------------------------------


def _ranked_counts(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fps, tps, thresholds): for every distinct score, highest first, the negatives and
    positives scoring at or above it. sklearn's _binary_clf_curve without weights."""
    order = np.argsort(scores, kind="mergesort")[::-1]
    ranked = scores[order]
    # the last position of each run of equal scores: a tie is one threshold
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    tps = np.cumsum(positive[order], dtype=np.int64)[last]
    fps = (last + 1) - tps
    return fps, tps, ranked[last]


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) as sklearn.metrics.roc_curve(positive, scores,
    drop_intermediate=False): one point per distinct score, highest first, after a first
    point (0, 0) at threshold +inf. fpr is NaN throughout without negatives, tpr without
    positives (sklearn warns as well)."""
    scores, positive = _check_binary(scores, positive)
    fps, tps, thresholds = _ranked_counts(scores, positive)
    fps, tps = np.r_[0, fps], np.r_[0, tps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, math.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, math.nan)
    return fpr, tpr, np.r_[np.inf, thresholds]


def _auc_from_counts(fps: np.ndarray, tps: np.ndarray) -> float:
    positives, negatives = int(tps[-1]), int(fps[-1])
    if positives == 0 or negatives == 0:
        return math.nan
    fps, tps = np.r_[0, fps], np.r_[0, tps]
    # The trapezoid rule in whole numbers (twice the area in count units), one division.
    twice_area = int(np.sum(np.diff(fps) * (tps[1:] + tps[:-1])))
    return twice_area / (2 * positives * negatives)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under roc_curve by the trapezoid rule, so a tie between a positive and a
    negative counts one half (the Mann-Whitney U / (P N)). NaN without positives or
    without negatives, as sklearn 1.7 (which also warns)."""
    scores, positive = _check_binary(scores, positive)
    return _auc_from_counts(*_ranked_counts(scores, positive)[:2])


def precision_recall_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) as sklearn.metrics.precision_recall_curve(positive,
    scores): one point per distinct score, lowest first (recall falling), then a last point
    precision 1, recall 0 with no threshold. Precision at a threshold is TP/(TP+FP) over the
    images scoring at or above it. Without positives recall is NaN (sklearn sets it to 1)."""
    scores, positive = _check_binary(scores, positive)
    fps, tps, thresholds = _ranked_counts(scores, positive)
    precision = tps / (tps + fps)  # every threshold holds at least one image
    recall = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, math.nan)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def _ap_from_counts(fps: np.ndarray, tps: np.ndarray) -> float:
    positives = int(tps[-1])
    if positives == 0:
        return math.nan
    gained = np.diff(np.r_[0, tps])  # R_n - R_{n-1}, in positives
    return float(np.sum(gained * (tps / (tps + fps)))) / positives


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """sum over thresholds n, highest first, of (R_n - R_{n-1}) P_n with R_0 = 0: the
    step-wise area of sklearn.metrics.average_precision_score, not the trapezoid and not
    the interpolated (PASCAL VOC) precision. NaN without positives (sklearn warns, gives 0)."""
    scores, positive = _check_binary(scores, positive)
    return _ap_from_counts(*_ranked_counts(scores, positive)[:2])


# -- thinning a curve for drawing --------------------------------------------------------------


def _turns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points that are not inside a horizontal or vertical run."""
    if len(x) <= 2:
        return np.arange(len(x))
    inside = ((x[:-2] == x[1:-1]) & (x[1:-1] == x[2:])) | ((y[:-2] == y[1:-1]) & (y[1:-1] == y[2:]))
    return np.flatnonzero(np.r_[True, ~inside, True])


def _visvalingam(x: list[float], y: list[float], keep: int) -> list[int]:
    """Indices of the `keep` points Visvalingam-Whyatt line simplification leaves.

    It removes, one at a time, the point whose triangle with its two current neighbours
    has the smallest area. Removing a point changes the area under the polyline by exactly
    that triangle, so the cheapest points for the AUC go first, and the corners of a curve
    hugging the top-left stay: their triangles, against the long straight parts, are large.
    """
    n = len(x)
    before, after = list(range(-1, n - 1)), list(range(1, n + 1))

    def area(i: int) -> float:
        a, b = before[i], after[i]
        return abs((x[i] - x[a]) * (y[b] - y[a]) - (x[b] - x[a]) * (y[i] - y[a])) / 2

    current = {i: area(i) for i in range(1, n - 1)}
    heap = [(v, i) for i, v in current.items()]
    heapq.heapify(heap)
    left = n
    while left > keep:
        v, i = heapq.heappop(heap)
        if current.get(i) != v:  # removed already, or its area changed since this entry
            continue
        del current[i]
        a, b = before[i], after[i]
        after[a], before[b] = b, a
        left -= 1
        for j in (a, b):
            if j in current:
                current[j] = area(j)
                heapq.heappush(heap, (current[j], j))
    return [0, *sorted(current), n - 1]


def downsample_curve(x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A subset of a curve's points, first and last always kept, for drawing.

    First the points inside straight horizontal or vertical runs go (the curve drawn
    through the rest is the same line, and its trapezoid area exactly the same); this
    alone usually leaves a per-class ROC curve under max_points. If more remain,
    Visvalingam-Whyatt simplification removes the points that change the polyline's area
    least until max_points are left. Uniform sampling in arc length was not used: it puts
    its points on the long straight parts of a curve with AUC ~0.999 and cuts the
    top-left corner, moving the micro AUC of MNIST-like data by up to 1e-4; this way moves
    it by under 1e-6.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, not {max_points}")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x {x.shape} and y {y.shape} must be equal 1-d shapes")
    keep = _turns(x, y)
    if len(keep) > max_points:
        keep = keep[_visvalingam(x[keep].tolist(), y[keep].tolist(), max_points)]
    return x[keep], y[keep]


# -- all classes -------------------------------------------------------------------------------


def _mean_defined(values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def _drawn(fps: np.ndarray, tps: np.ndarray, max_points: int) -> dict[str, dict[str, list[float]]]:
    """The thinned ROC and PR curves from one class's counts; empty lists where undefined."""
    positives, negatives = int(tps[-1]), int(fps[-1])
    roc: dict[str, list[float]] = {"fpr": [], "tpr": []}
    pr: dict[str, list[float]] = {"recall": [], "precision": []}
    if positives and negatives:
        fpr, tpr = downsample_curve(np.r_[0, fps] / negatives, np.r_[0, tps] / positives, max_points)
        roc = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    if positives:
        precision = np.r_[(tps / (tps + fps))[::-1], 1.0]
        recall = np.r_[(tps / positives)[::-1], 0.0]
        recall, precision = downsample_curve(recall, precision, max_points)
        pr = {"recall": recall.tolist(), "precision": precision.tolist()}
    return {"roc": roc, "pr": pr}


@dataclass(frozen=True, eq=False)  # eq=False: NaN fields would make == false anyway
class RankingMetrics:
    log_loss: float
    roc_auc_macro: float  # mean over the classes whose AUC is defined
    roc_auc_micro: float  # all n*k (score, is-this-the-label) pairs as one ranking
    average_precision_macro: float  # mean over the classes with a positive image
    average_precision_micro: float
    roc_auc: list[float]  # per class; NaN for a class absent from (or alone in) the labels
    average_precision: list[float]  # per class; NaN for a class absent from the labels
    roc_curves: list[dict[str, list[float]]]  # per class {"fpr", "tpr"}, thinned; [] if undefined
    pr_curves: list[dict[str, list[float]]]  # per class {"recall", "precision"}, recall falling
    roc_curve_micro: dict[str, list[float]]
    pr_curve_micro: dict[str, list[float]]


def ranking_metrics(
    probabilities: np.ndarray, labels: np.ndarray, max_points: int = MAX_CURVE_POINTS
) -> RankingMetrics:
    """Log loss, per-class and averaged ROC AUC and average precision, and the curves.

    Class c's scores are probabilities[:, c] and its positives labels == c. Macro averages
    are unweighted means over the classes where the metric is defined, NaN if none is;
    sklearn's macro is NaN for ROC AUC as soon as one class is undefined, and counts an
    undefined AP as 0. Micro averages pool all n*k
    (probability, indicator) pairs into one ranking, as sklearn's average="micro" on a
    one-hot label matrix. Curves are thinned to at most max_points by downsample_curve.
    """
    probabilities, labels = _check(probabilities, labels)
    k = probabilities.shape[1]
    onehot = labels[:, None] == np.arange(k)  # (n, k) bool
    scores = probabilities.astype(np.float64)

    auc, ap, roc_curves, pr_curves = [], [], [], []
    for c in range(k):
        fps, tps, _ = _ranked_counts(scores[:, c], onehot[:, c])
        auc.append(_auc_from_counts(fps, tps))
        ap.append(_ap_from_counts(fps, tps))
        drawn = _drawn(fps, tps, max_points)
        roc_curves.append(drawn["roc"])
        pr_curves.append(drawn["pr"])

    fps, tps, _ = _ranked_counts(scores.ravel(), onehot.ravel())
    micro = _drawn(fps, tps, max_points)
    return RankingMetrics(
        log_loss=log_loss(probabilities, labels),
        roc_auc_macro=_mean_defined(auc),
        roc_auc_micro=_auc_from_counts(fps, tps),
        average_precision_macro=_mean_defined(ap),
        average_precision_micro=_ap_from_counts(fps, tps),
        roc_auc=auc,
        average_precision=ap,
        roc_curves=roc_curves,
        pr_curves=pr_curves,
        roc_curve_micro=micro["roc"],
        pr_curve_micro=micro["pr"],
    )
