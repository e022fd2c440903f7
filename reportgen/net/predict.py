"""Class probabilities from a network: the only part of the evaluation that runs MXNet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mxnet as mx
import numpy as np

from reportgen.data import batches
from reportgen.errors import ReportgenError
from reportgen.stats.caret import N_CLASSES

if TYPE_CHECKING:
    from reportgen.net.model import Network


def predict(
    forward: Any, images: np.ndarray, ctx: mx.Context, pixels: str = "unit", batch_size: int = 1000
) -> np.ndarray:
    """Class probabilities, float32 (n, 10), for uint8 images (n, 28, 28), in image order.

    `forward` maps a batch to probabilities; every batch has one shape (data.batches), so a
    network hybridized with static_shape never rebuilds its cached graph.
    """
    if batch_size < 1:
        raise ReportgenError(f"--batch-size must be at least 1, not {batch_size}")
    result = np.empty((len(images), N_CLASSES), np.float32)
    for start, count, batch in batches(images, max(1, min(batch_size, len(images))), pixels):
        out = forward(mx.nd.array(batch, ctx=ctx))
        result[start : start + count] = out[:count].asnumpy()
    return result


def probabilities(network: Network, images: np.ndarray, ctx: mx.Context, batch_size: int = 1000) -> np.ndarray:
    """Every image's class probabilities, fed as the network wants."""
    return predict(network.forward, images, ctx, network.pixels, batch_size)
