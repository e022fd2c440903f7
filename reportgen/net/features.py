"""The act3 feature space: every test image's 500 act3 features on their first two principal
components, and the nearest training images of some test images in those features.

act3 runs through `inside.layer_block(network, "act3")`, plain inference. The training images'
features are streamed batch by batch into the neighbour search (stats.features.Nearest), so
the 60,000 x 500 of them (120 MB in float32) are never held at once; the PCA and the search are
numpy (stats.features).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from reportgen.data import batches
from reportgen.errors import DataError, ModelError
from reportgen.layers import SHAPES
from reportgen.net.inside import layer_block
from reportgen.run.explanation import COMPONENTS, NEIGHBOURS, Features
from reportgen.stats import features as stats_features

if TYPE_CHECKING:
    import mxnet as mx

    from reportgen.net.model import Network

BATCH = 1000  # images per forward pass of act3 (net.predict's size)


# -- act3 features -------------------------------------------------------------------------------


def act3_batches(
    block, images: np.ndarray, pixels: str, ctx: mx.Context, batch_size: int = BATCH
) -> Iterator[tuple[int, np.ndarray]]:
    """(start, act3 float32 (count, 500)) for uint8 images, batch by batch, in image order.

    The next batch is handed to MXNet before the current one is read back, so the network
    computes while the caller works on the last batch's features.
    """
    import mxnet as mx

    pending: tuple[int, int, mx.nd.NDArray] | None = None
    for start, count, batch in batches(images, max(1, min(batch_size, len(images))), pixels):
        out = block(mx.nd.array(batch, ctx=ctx))  # asynchronous: returns before it is computed
        if pending is not None:
            yield pending[0], pending[2][: pending[1]].asnumpy()
        pending = (start, count, out)
    if pending is not None:
        yield pending[0], pending[2][: pending[1]].asnumpy()


def act3(network: Network, images: np.ndarray, ctx: mx.Context, batch_size: int = BATCH) -> np.ndarray:
    """act3's 500 features of every image, float32 (n, 500)."""
    block = layer_block(network, "act3", ctx)
    out = np.empty((len(images), *SHAPES["act3"]), np.float32)
    for start, values in act3_batches(block, images, network.pixels, ctx, batch_size):
        out[start : start + len(values)] = values
    return out


def features(
    network: Network,
    test_images: np.ndarray,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    cases: Sequence[int] | np.ndarray,
    ctx: mx.Context,
    batch_size: int = BATCH,
) -> Features:
    """act3 of every test image on its first two principal components, and for each test image
    in `cases` its NEIGHBOURS nearest training images in act3 space (Euclidean), with their
    labels and pixels.

    The training images' features are computed and searched a batch at a time: memory is one
    batch's features, not len(train_images) x 500.
    """
    chosen = np.asarray(cases, dtype=np.int64).reshape(-1)
    if len(np.unique(chosen)) != len(chosen):
        raise DataError("a test image is given twice to find neighbours for")
    if ((chosen < 0) | (chosen >= len(test_images))).any():
        raise DataError(f"a test image to find neighbours for is beyond the {len(test_images)} test images")
    if len(train_labels) != len(train_images):
        raise DataError(f"{len(train_images)} training images but {len(train_labels)} labels")
    if len(train_images) < NEIGHBOURS:
        raise DataError(f"{len(train_images)} training images: too few for {NEIGHBOURS} nearest neighbours")
    if len(test_images) < 2:
        raise DataError(f"{len(test_images)} test image: too few for principal components")
    block = layer_block(network, "act3", ctx)
    test = np.empty((len(test_images), *SHAPES["act3"]), np.float32)
    for start, values in act3_batches(block, test_images, network.pixels, ctx, batch_size):
        test[start : start + len(values)] = values
    try:  # the statistics refuse NaN or infinite features (a model whose weights hold them)
        projection = stats_features.pca(test, COMPONENTS)
        if len(chosen):
            search = stats_features.Nearest(test[chosen], NEIGHBOURS)
            for start, values in act3_batches(block, train_images, network.pixels, ctx, batch_size):
                search.add(values, start)
            neighbours, distances = search.result()
        else:  # no mistake: no neighbours, and no pass over the training images
            neighbours, distances = np.zeros((0, NEIGHBOURS), np.int64), np.zeros((0, NEIGHBOURS))
    except ValueError as e:
        raise ModelError(f"act3 features: {e}") from e
    return Features(
        act3_pca=projection.scores.astype(np.float32),
        explained_variance_ratio=projection.explained_variance_ratio,
        neighbours=neighbours,
        neighbour_cases=chosen,
        neighbour_distances=distances,
        neighbour_labels=np.asarray(train_labels)[neighbours].astype(np.int64),
        neighbour_images=np.asarray(train_images)[neighbours].astype(np.uint8),
        train_images=len(train_images),
    )
