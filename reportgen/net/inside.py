"""Inside the network: every layer's output for chosen test digits, through one graph.

The seed grouped its eleven internal symbols and bound them to an executor; here the
same group (Network.layers, for a LeNet trained here or one loaded) becomes one
hybridized Gluon SymbolBlock that shares the network's parameters, so a single forward
pass returns all eleven layers for a batch of images. `layer_block` gives one layer's output
alone, on a private copy of the parameters, for the explanations (net.attribution,
net.features), which take gradients through it.
"""

from __future__ import annotations

import json
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


# -- one layer, for the explanations --------------------------------------------------------------


def _value(parameter, ctx: mx.Context) -> mx.nd.NDArray:
    contexts = parameter.list_ctx()
    return parameter.data(ctx if ctx in contexts else contexts[0]).astype("float32").as_in_context(ctx)


# Operators a saved model may hold between its layers that pass their input on at inference
# (graph.PASS_THROUGH) but not in a pass recorded for training: Dropout drops units, BlockGrad
# and stop_gradient stop the gradient. For gradients they become the identity they are at
# inference.
_INFERENCE_IDENTITIES = frozenset({"Dropout", "BlockGrad", "stop_gradient"})


def inference_graph(symbol: mx.sym.Symbol) -> mx.sym.Symbol:
    """The symbol with every Dropout, BlockGrad and stop_gradient node made an identity (_copy).

    Then a pass recorded with train_mode=True computes exactly the inference function: the
    seed's LeNet has no other operator that trains differently (graph.py accepts no batch
    normalisation, and Dropout only where it is the identity at inference). Train mode is
    needed for the gradient: with train_mode=False, MXNet 1.9.1's oneDNN max pooling runs its
    inference kernel, which keeps no workspace of where each maximum was, and its backward pass
    then routes the gradient wrongly (input gradients off by up to a factor of two against
    finite differences here; tests/test_explain.py checks them against a numpy LeNet).
    """
    graph = json.loads(symbol.tojson())
    changed = False
    for node in graph["nodes"]:
        if node["op"] in _INFERENCE_IDENTITIES:
            node["op"] = "_copy"
            node["inputs"] = node["inputs"][:1]
            for key in ("attrs", "attr", "param"):
                node.pop(key, None)
            changed = True
    return mx.sym.load_json(json.dumps(graph)) if changed else symbol


def layer_block(network: Network, layer: str, ctx: mx.Context) -> mx.gluon.SymbolBlock:
    """A hybridized block from the input to one layer's output (e.g. "full2", "act3"), on its
    own copy of the network's parameters, which ask for no gradient; its graph is the
    inference graph (inference_graph), so it may run in a pass recorded for training."""
    output = inference_graph(network.layers[LAYERS.index(layer)])
    # A typed input: an untyped one makes SymbolBlock warn that it cannot decide the type.
    block = mx.gluon.SymbolBlock(output, mx.sym.var(network.data, dtype="float32"))
    params = block.collect_params()
    params.setattr("grad_req", "null")
    params.load_dict({name: _value(network.params[name], ctx) for name in params.keys()}, ctx=ctx)
    block.hybridize(static_alloc=True, static_shape=True)
    return block
