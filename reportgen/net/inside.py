"""Inside the network: every layer's output for chosen test digits, through one graph.

The seed grouped its eleven internal symbols and bound them to an executor; here the
same group (Network.layers, for a LeNet trained here or one loaded) becomes one
hybridized Gluon SymbolBlock that shares the network's parameters, so a single forward
pass returns all eleven layers for a batch of images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mxnet as mx
import numpy as np

from reportgen.data import batches
from reportgen.errors import DataError, ReportgenError
from reportgen.layers import LAYERS, SHAPES
from reportgen.run.inspection import Inspection, check_index

if TYPE_CHECKING:
    from reportgen.net.model import Network


def multi_output(network: Network, ctx: mx.Context) -> mx.gluon.SymbolBlock:
    """A hybridized block whose outputs are the eleven layers, in LAYERS order.

    It shares the network's Parameter objects (no copy), so it always sees the current
    weights. If the parameters do not live on `ctx` yet, a copy is added there: the
    network then runs on its old contexts and on `ctx` alike.
    """
    params = network.params
    contexts = next(iter(params.values())).list_ctx()
    if ctx not in contexts:
        params.reset_ctx(contexts + [ctx])  # keeps the values; only adds a device copy
    # A typed input: with an untyped one, SymbolBlock warns "Cannot decide type
    # for the following arguments" (and then falls back to float32 anyway).
    data = mx.sym.var(network.data, dtype="float32")
    block = mx.gluon.SymbolBlock(network.layers, data, params=params)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def run(
    network: Network, images: np.ndarray, labels: np.ndarray, cases: list[int], ctx: mx.Context, batch_size: int = 256
) -> Inspection:
    """Every layer's output for test images[cases], fed as the network wants, in batches of one size.

    images: uint8 (n, 28, 28) test images; labels: (n,).
    """
    if batch_size < 1:
        raise ReportgenError(f"--batch-size must be at least 1, not {batch_size}")
    chosen = np.asarray(cases, dtype=np.int64)
    if chosen.ndim != 1 or not len(chosen):
        raise DataError("no case to inspect: give --case worst or a test-set index")
    for index in chosen:
        check_index(int(index), len(images))
    block = multi_output(network, ctx)
    outputs = {layer: np.empty((len(chosen), *SHAPES[layer]), np.float32) for layer in LAYERS}
    for start, count, batch in batches(images[chosen], min(batch_size, len(chosen)), network.pixels):
        results = block(mx.nd.array(batch, ctx=ctx))
        for layer, result in zip(LAYERS, results):
            outputs[layer][start : start + count] = result[:count].asnumpy()
    return Inspection(
        indices=chosen,
        labels=np.asarray(labels)[chosen].astype(np.int64),
        predictions=outputs["softm"].argmax(axis=1).astype(np.int64),
        outputs=outputs,
        kernels={layer: network.params[name].data(ctx).asnumpy() for layer, name in network.kernels.items()},
    )
