"""Why the network answered as it did: integrated gradients and occlusion of a score difference.

For any Network (reportgen's LeNet, or a model `--model` loaded: the seed's Module checkpoint
with its SoftmaxOutput head, a Gluon export ending at full2, any names), the explained function
F is a difference of full2's scores, the logits before the softmax, computed through
`inside.layer_block(network, "full2")` (a private copy of the parameters that asks for no
gradient: the network's own gradient buffers are left alone).

- Integrated gradients (Sundararajan, Taly and Yan 2017), from the all-zero image: 0 is black
  in either input scaling ("unit" divides by 255, "raw" does not), so the baseline is the same
  zero array whatever the model was trained on, and the straight path is alpha * x. The path
  integral is the midpoint rule on `STEPS` equal intervals (integrated_gradients says why not
  the trapezoid rule), whose error falls as 1/steps^2 where F is smooth along the path. An
  image that misses completeness is refined where the rule is wrong, up to `MAX_STEPS`
  intervals; what is left is reported per image.
- Occlusion (Zeiler and Fergus 2014): F(x) - F(x with a window set to 0) for every window
  position. A window that covers only black pixels changes nothing: its entry is exactly 0
  without a forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reportgen.data import to_input
from reportgen.errors import DataError, ReportgenError
from reportgen.net.inside import layer_block
from reportgen.run.explanation import (
    FLOOR,
    MAX_STEPS,
    N_CLASSES,
    SIDE,
    STEPS,
    STRIDE,
    TOLERANCE,
    WINDOW,
    Attributions,
    completeness_error,
    occlusion_positions,
)

if TYPE_CHECKING:
    import mxnet as mx

    from reportgen.net.model import Network

BATCH = 256  # images per forward and backward pass


# -- the score difference and its gradient --------------------------------------------------------


def score_weights(targets: np.ndarray, versus: np.ndarray) -> np.ndarray:
    """(n, 10) float32 rows w with F = w . full2: +1 at the target, -1 at versus (none for -1)."""
    n = len(targets)
    weights = np.zeros((n, N_CLASSES), np.float32)
    weights[np.arange(n), targets] = 1.0
    against = np.flatnonzero(versus >= 0)
    weights[against, versus[against]] = -1.0
    return weights


@dataclass(frozen=True)
class _Rows:
    """Inputs made on the fly: row j is scale[j] * images[image[j]] * keep[mask[j]]."""

    image: np.ndarray  # (k,) int64
    scale: np.ndarray  # (k,) float32
    mask: np.ndarray  # (k,) int64, into keep; -1: nothing hidden

    def __len__(self) -> int:
        return len(self.image)


def _make(rows: _Rows, part: slice, images: np.ndarray, keep: np.ndarray | None, size: int) -> np.ndarray:
    batch = np.zeros((size, 1, SIDE, SIDE), np.float32)
    chosen = images[rows.image[part]] * rows.scale[part, None, None]  # (count, 28, 28)
    if keep is not None:
        masks = rows.mask[part]
        hidden = masks >= 0
        chosen[hidden] *= keep[masks[hidden]]
    batch[: len(chosen), 0] = chosen
    return batch


def _scores(
    block,
    rows: _Rows,
    images: np.ndarray,
    weights: np.ndarray,
    ctx: mx.Context,
    keep: np.ndarray | None = None,
    gradients: bool = False,
    batch_size: int = BATCH,
) -> tuple[np.ndarray, np.ndarray | None]:
    """F at each row's input, float64 (k,), and with gradients=True dF/dinput, float32 (k, 28, 28).

    Every batch has batch_size rows (the last padded with zeros and dropped), so the
    hybridized block never rebuilds its graph.
    """
    import mxnet as mx

    k = len(rows)
    values = np.empty(k, np.float64)
    grads = np.empty((k, SIDE, SIDE), np.float32) if gradients else None
    for start in range(0, k, batch_size):
        part = slice(start, min(k, start + batch_size))
        count = part.stop - part.start
        x = mx.nd.array(_make(rows, part, images, keep, batch_size), ctx=ctx)
        w = np.zeros((batch_size, N_CLASSES), np.float32)
        w[:count] = weights[rows.image[part]]
        w_nd = mx.nd.array(w, ctx=ctx)
        if gradients:
            x.attach_grad()
            # train_mode=True: see inference_graph (the same function, a right gradient).
            with mx.autograd.record(train_mode=True):
                f = (block(x) * w_nd).sum(axis=1)
            f.backward()  # each row's F depends on its own input only: the sum's gradient is each F's
            assert grads is not None
            grads[part] = x.grad.asnumpy()[:count, 0]
        else:
            f = (block(x) * w_nd).sum(axis=1)
        values[part] = f.asnumpy()[:count]
    return values, grads


# -- integrated gradients ------------------------------------------------------------------------


def _path_rows(images: np.ndarray, alphas: np.ndarray) -> _Rows:
    """Rows alpha * x: image images[j] at alphas[j]."""
    return _Rows(np.asarray(images, np.int64), np.asarray(alphas, np.float32), np.full(len(images), -1, np.int64))


@dataclass
class _Path:
    """One image's path integral as the midpoint rule on intervals [lo, hi] of [0, 1].

    For an interval with midpoint c, F(hi) - F(lo) is the exact integral over it of the path
    derivative F'(alpha) = grad F(alpha x) . x, and (hi - lo) F'(c) the rule's value: their
    difference is the interval's own error, and the errors of all intervals add up exactly to
    the completeness error of the whole.
    """

    lo: np.ndarray  # (m,) float64
    hi: np.ndarray
    at_lo: np.ndarray  # F(lo x), F(hi x)
    at_hi: np.ndarray
    at_mid: np.ndarray  # F(c x)
    grads: np.ndarray  # (m, 28, 28) float32: grad F(c x)
    slopes: np.ndarray  # (m,) F'(c)

    def errors(self) -> np.ndarray:
        return (self.at_hi - self.at_lo) - (self.hi - self.lo) * self.slopes

    def halves(self, chosen: np.ndarray) -> np.ndarray:
        """The midpoints of the two halves of each chosen interval: all left halves, then all right."""
        centre = (self.lo[chosen] + self.hi[chosen]) / 2
        return np.concatenate([(self.lo[chosen] + centre) / 2, (centre + self.hi[chosen]) / 2])

    def split(self, chosen: np.ndarray, at_mid: np.ndarray, grads: np.ndarray, slopes: np.ndarray) -> None:
        """Replace each chosen interval by its halves, given F, its gradient and F' at the halves'
        midpoints in halves()' order. The old midpoint becomes an edge: its F is known."""
        keep = np.ones(len(self.lo), bool)
        keep[chosen] = False
        centre = (self.lo[chosen] + self.hi[chosen]) / 2
        self.lo = np.concatenate([self.lo[keep], self.lo[chosen], centre])
        self.hi = np.concatenate([self.hi[keep], centre, self.hi[chosen]])
        self.at_lo = np.concatenate([self.at_lo[keep], self.at_lo[chosen], self.at_mid[chosen]])
        self.at_hi = np.concatenate([self.at_hi[keep], self.at_mid[chosen], self.at_hi[chosen]])
        self.at_mid = np.concatenate([self.at_mid[keep], at_mid])
        self.grads = np.concatenate([self.grads[keep], grads])
        self.slopes = np.concatenate([self.slopes[keep], slopes])

    def attributions(self, image: np.ndarray) -> np.ndarray:
        return image * np.einsum("k,kij->ij", self.hi - self.lo, self.grads.astype(np.float64))


def _slopes(grads: np.ndarray, images: np.ndarray) -> np.ndarray:
    """F'(alpha) = grad F . x for rows of gradients (k, 28, 28) of images (k, 28, 28)."""
    return np.einsum("kij,kij->k", grads.astype(np.float64), images.astype(np.float64))


def integrated_gradients(
    block,
    x: np.ndarray,
    weights: np.ndarray,
    ctx: mx.Context,
    steps: int = STEPS,
    max_steps: int = MAX_STEPS,
    batch_size: int = BATCH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integrated gradients of F = weights . full2 from the zero image to each x, float32 (n, 1, 28, 28).

    The midpoint rule on `steps` equal intervals of the straight path alpha * x: F's gradient
    at alpha = (k + 1/2) / steps, averaged, times x. Not the trapezoid rule: at alpha = 0 every
    max pooling window is a tie (each of conv1's maps is its bias alone), so the gradient there
    follows an arbitrary tie-break rather than the path; the trapezoid rule counts that point
    and converged only as 1/steps on a trained LeNet (a 60% completeness error at 64 steps, 7%
    at 512), while the midpoint rule never evaluates the end points and converges as 1/steps^2
    where F is smooth (0.5% at 64 steps on the same image). F(x) and F(0) are computed apart,
    without gradient.

    An image whose attributions miss completeness (by more than TOLERANCE) is refined where the
    rule is wrong: F at its intervals' edges gives each interval's own error (_Path), and the
    intervals whose error exceeds their share of the tolerance are halved, round after round, all
    images in the same batches, until completeness holds or the image has `max_steps` intervals.
    This matters for a model fed raw 0-255 pixels: its first layer sees inputs 255 times larger,
    its tanh units saturate within the first hundredth of the path, and 60-80% of the integral
    lies there (measured on a Module-trained seed network), where 64 equal steps put less than
    one point: every image of the seed's network (2 epochs on raw pixels, 98.0%) needed 69-290
    intervals, 8 rounds of refinement for 29 images.

    Returns (attributions (n, 28, 28) float32, F(x) (n,), F(0) (n,), intervals used (n,)).
    """
    if steps < 1 or max_steps < steps:
        raise ReportgenError(f"integrated gradients need 1 <= steps <= max_steps, not {steps} and {max_steps}")
    n = len(x)
    images = x[:, 0].astype(np.float32)
    every = np.arange(n)
    ends, _ = _scores(
        block, _path_rows(np.repeat(every, 2), np.tile([0.0, 1.0], n)), images, weights, ctx, batch_size=batch_size
    )
    at_baseline, at_image = ends[0::2], ends[1::2]
    floor = np.maximum(np.abs(at_image - at_baseline), FLOOR)  # completeness_error's denominator
    edges = np.arange(steps + 1) / steps
    mids = (edges[:-1] + edges[1:]) / 2
    at_mid, grads = _scores(
        block,
        _path_rows(np.repeat(every, steps), np.tile(mids, n)),
        images,
        weights,
        ctx,
        gradients=True,
        batch_size=batch_size,
    )
    assert grads is not None
    grads = grads.reshape(n, steps, SIDE, SIDE)
    ig = images * grads.astype(np.float64).mean(axis=1)
    intervals = np.full(n, steps, np.int64)
    failing = np.flatnonzero(completeness_error(ig.reshape(n, -1).sum(axis=1), at_image, at_baseline) > TOLERANCE)
    if not len(failing) or max_steps == steps:
        return ig.astype(np.float32), at_image, at_baseline, intervals
    inner = edges[1:-1]
    at_inner, _ = _scores(
        block,
        _path_rows(np.repeat(failing, len(inner)), np.tile(inner, len(failing))),
        images,
        weights,
        ctx,
        batch_size=batch_size,
    )
    at_inner = at_inner.reshape(len(failing), len(inner))
    paths = {}
    for j, i in enumerate(failing):
        at_edges = np.concatenate([[at_baseline[i]], at_inner[j], [at_image[i]]])
        paths[int(i)] = _Path(
            lo=edges[:-1],
            hi=edges[1:],
            at_lo=at_edges[:-1],
            at_hi=at_edges[1:],
            at_mid=at_mid.reshape(n, steps)[i],
            grads=grads[i],
            slopes=_slopes(grads[i], np.broadcast_to(images[i], grads[i].shape)),
        )
    while paths:
        asked: list[tuple[int, np.ndarray]] = []
        for i, path in list(paths.items()):
            errors = path.errors()
            room = max_steps - len(errors)
            if abs(errors.sum()) <= TOLERANCE * floor[i] or room <= 0:
                ig[i] = path.attributions(images[i])
                intervals[i] = len(errors)
                del paths[i]
                continue
            # Halve each interval whose error is above an equal share of the tolerance among the
            # `steps` intervals the image started with; once none is, above its share among the
            # intervals it has now (when none is, completeness holds). Largest first, as many as
            # there is room for. The fixed share first halved 22% fewer intervals on a raw-pixel
            # model than the current share alone, for the same completeness.
            order = np.argsort(-np.abs(errors), kind="stable")
            over = order[np.abs(errors[order]) > TOLERANCE * floor[i] / steps]
            if not len(over):
                over = order[np.abs(errors[order]) > TOLERANCE * floor[i] / len(errors)]
            asked.append((i, (over if len(over) else order[:1])[:room]))
        if not asked:
            break
        rows_image = np.concatenate([np.full(2 * len(chosen), i) for i, chosen in asked])
        rows_alpha = np.concatenate([paths[i].halves(chosen) for i, chosen in asked])
        values, more = _scores(
            block, _path_rows(rows_image, rows_alpha), images, weights, ctx, gradients=True, batch_size=batch_size
        )
        assert more is not None
        start = 0
        for i, chosen in asked:
            part = slice(start, start + 2 * len(chosen))
            paths[i].split(chosen, values[part], more[part], _slopes(more[part], images[rows_image[part]]))
            start = part.stop
    return ig.astype(np.float32), at_image, at_baseline, intervals


# -- occlusion ----------------------------------------------------------------------------------


def occlusion_masks(window: int = WINDOW, stride: int = STRIDE) -> np.ndarray:
    """(P, 28, 28) float32 masks, 0 inside the window and 1 elsewhere, in row-major order of the
    window's top-left corner (r * stride, c * stride)."""
    side = occlusion_positions(window, stride)
    keep = np.ones((side, side, SIDE, SIDE), np.float32)
    for r in range(side):
        for c in range(side):
            keep[r, c, r * stride : r * stride + window, c * stride : c * stride + window] = 0
    return keep.reshape(side * side, SIDE, SIDE)


def occlusion(
    block,
    x: np.ndarray,
    weights: np.ndarray,
    ctx: mx.Context,
    window: int = WINDOW,
    stride: int = STRIDE,
    batch_size: int = BATCH,
) -> np.ndarray:
    """F(x) - F(x with the window at (r * stride, c * stride) set to 0): float32 (n, H', W').

    F(x) is computed in the same batches as the occluded images; a window over black pixels
    only leaves x as it is, and its entry is exactly 0.
    """
    if not (1 <= window <= SIDE and 1 <= stride <= SIDE):
        raise ReportgenError(f"occlusion needs a window and stride of 1-{SIDE} pixels, not {window} and {stride}")
    n = len(x)
    images = x[:, 0].astype(np.float32)
    keep = occlusion_masks(window, stride)
    # (n, P): does the window hide any ink of the image?
    touches = np.einsum("nij,pij->np", (images != 0).astype(np.float32), 1 - keep) > 0
    image_rows = np.arange(n)
    hidden_image, hidden_mask = np.nonzero(touches)
    rows = _Rows(
        image=np.concatenate([image_rows, hidden_image]),
        scale=np.ones(n + len(hidden_image), np.float32),
        mask=np.concatenate([np.full(n, -1, np.int64), hidden_mask]),
    )
    values, _ = _scores(block, rows, images, weights, ctx, keep=keep, batch_size=batch_size)
    drops = np.zeros((n, len(keep)), np.float64)
    drops[hidden_image, hidden_mask] = values[:n][hidden_image] - values[n:]
    side = occlusion_positions(window, stride)
    return drops.reshape(n, side, side).astype(np.float32)


def attributions(
    network: Network,
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    cases: list[int] | np.ndarray,
    ctx: mx.Context,
    steps: int = STEPS,
    window: int = WINDOW,
    stride: int = STRIDE,
    batch_size: int = BATCH,
) -> Attributions:
    """Integrated gradients and occlusion for test images[cases], fed as the network wants.

    images: uint8 (N, 28, 28) test images; labels, predictions: (N,), the predictions the report
    shows (the evaluation's). A right answer explains the prediction's score; a mistake the
    prediction's score minus the label's.
    """
    chosen = np.asarray(cases, dtype=np.int64)
    if chosen.ndim != 1 or not len(chosen):
        raise DataError("no test image to explain")
    if len(np.unique(chosen)) != len(chosen):
        raise DataError("a test image is given twice to explain")
    if ((chosen < 0) | (chosen >= len(images))).any():
        raise DataError(f"a test image to explain is beyond the {len(images)} test images")
    targets = np.asarray(predictions)[chosen].astype(np.int64)
    truth = np.asarray(labels)[chosen].astype(np.int64)
    versus = np.where(truth != targets, truth, -1).astype(np.int64)
    weights = score_weights(targets, versus)
    x = to_input(images[chosen], network.pixels)
    block = layer_block(network, "full2", ctx)
    ig, at_image, at_baseline, used = integrated_gradients(block, x, weights, ctx, steps, batch_size=batch_size)
    drops = occlusion(block, x, weights, ctx, window, stride, batch_size)
    return Attributions(
        indices=chosen,
        targets=targets,
        versus=versus,
        integrated_gradients=ig,
        occlusion=drops,
        occlusion_window=window,
        occlusion_stride=stride,
        score_image=at_image,
        score_baseline=at_baseline,
        steps=used,
    )
