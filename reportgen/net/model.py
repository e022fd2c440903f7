"""The seed's LeNet as a Gluon HybridBlock, its saved form on disk, and the Network that
evaluation and inspection run, whether the LeNet was trained here or loaded (saved.py).

Every layer has a fixed name (conv1 ... softm, layers.LAYERS), so that the symbol's
internal outputs are `<layer>_fwd_output` and later stages can find each by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx
from mxnet.gluon import nn

from reportgen import __version__
from reportgen.data import PIXELS
from reportgen.errors import ModelError
from reportgen.layers import LAYERS
from reportgen.run.files import read_json, write_json
from reportgen.run.record import ModelRecord

NAME = "lenet"  # file stem of the exported model: lenet-symbol.json, lenet-NNNN.params
# Beside NAME-symbol.json, what MXNet's files cannot say: how the model's images are scaled.
NOTE = "-reportgen.json"

INITIALIZER_NAME = "Gaussian, variance 2/fan_in (mx.init.Xavier gaussian, in, magnitude 2)"


def initializer() -> mx.init.Initializer:
    return mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)


def output_name(layer: str) -> str:
    """The name of a layer's output among the symbol's internals."""
    return f"{layer}_fwd_output"


class _Flatten(nn.HybridBlock):
    # Gluon's Flatten leaves its operator unnamed ("flatten0"); naming it "fwd"
    # makes every layer's output `<layer>_fwd_output`.
    def hybrid_forward(self, F, x):
        return F.flatten(x, name="fwd")


class _Softmax(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        return F.softmax(x, name="fwd")


class LeNet(nn.HybridBlock):
    """conv-tanh-pool twice, FC 500 tanh, FC 10, softmax: the seed's network.

    `net(x)` gives class probabilities (the seed's SoftmaxOutput);
    `net.logits(x)` stops before the softmax, for a numerically stable loss.
    """

    def __init__(self) -> None:
        super().__init__(prefix="")  # parameters are conv1_weight, full2_bias, ...
        with self.name_scope():
            self.logits = nn.HybridSequential(prefix="")
            with self.logits.name_scope():
                self.logits.add(
                    nn.Conv2D(20, kernel_size=5, prefix="conv1_"),  # 1x28x28 -> 20x24x24
                    nn.Activation("tanh", prefix="act1_"),
                    nn.MaxPool2D(pool_size=2, strides=2, prefix="pool1_"),  # -> 20x12x12
                    nn.Conv2D(50, kernel_size=5, prefix="conv2_"),  # -> 50x8x8
                    nn.Activation("tanh", prefix="act2_"),
                    nn.MaxPool2D(pool_size=2, strides=2, prefix="pool2_"),  # -> 50x4x4
                    _Flatten(prefix="flat_"),  # -> 800
                    nn.Dense(500, prefix="full1_"),
                    nn.Activation("tanh", prefix="act3_"),
                    nn.Dense(10, prefix="full2_"),
                )
            self.softm = _Softmax(prefix="softm_")

    def hybrid_forward(self, F, x):
        return self.softm(self.logits(x))


def build(ctx: list[mx.Context] | mx.Context | None = None, seed: int | None = None) -> LeNet:
    """A fresh, initialised, hybridized LeNet.

    Weights start Gaussian with variance 2/fan_in: on 6,000 images, one epoch
    reached 93-95% test accuracy over three seeds with it, against 91-93% with
    Xavier-uniform and 91-92% with Gluon's uniform(0.07). The seed's R default
    was uniform(-0.01, 0.01).
    """
    if seed is not None:
        mx.random.seed(seed)
    net = LeNet()
    net.initialize(initializer(), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


@dataclass(frozen=True, eq=False)
class Network:
    """A LeNet ready to run, trained here or loaded from MXNet's files.

    `forward` and the `layers` symbol read one set of parameters (`params`): evaluation
    calls forward, inspection builds one multi-output block over layers.
    """

    forward: Any  # a hybridized HybridBlock: float32 (n, 1, 28, 28) -> probabilities (n, 10)
    layers: Any  # mx.sym.Symbol: the eleven layers' outputs, in LAYERS order
    data: str  # the name of the input `layers` reads
    params: Any  # mx.gluon.ParameterDict shared by forward and layers
    kernels: dict[str, str]  # "conv1", "conv2" -> the name of its weight in params
    record: ModelRecord  # what the run record says of it: source, epoch, pixel scaling, names

    @property
    def pixels(self) -> str:
        return self.record.pixels


def network(net: LeNet, record: ModelRecord) -> Network:
    """reportgen's own LeNet as a Network."""
    # A typed input: with an untyped `data`, SymbolBlock warns "Cannot decide type
    # for the following arguments" (and then falls back to float32 anyway).
    internals = net(mx.sym.var("data", dtype="float32")).get_internals()
    layers = mx.sym.Group([internals[output_name(layer)] for layer in LAYERS])
    kernels = {"conv1": "conv1_weight", "conv2": "conv2_weight"}
    return Network(net, layers, "data", net.collect_params(), kernels, record)


def save(net: LeNet, folder: Path, epoch: int) -> list[Path]:
    """Export in MXNet's format: <folder>/lenet-symbol.json and lenet-<epoch>.params, and the
    note that reportgen trained it on unit pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    # export() needs the whole network's graph; training only ran net.logits.
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    net(mx.nd.zeros((1, 1, 28, 28), ctx=ctx))
    net.export(str(folder / NAME), epoch=epoch)
    note = write_note(folder / NAME, "unit", trained=True)
    return [folder / f"{NAME}-symbol.json", folder / f"{NAME}-{epoch:04d}.params", note]


# -- the note beside a model -----------------------------------------------------------------
# The pixel scaling cannot be read from a model's files, and a wrong one costs accuracy (a
# seed-style model fed unit pixels lost 4 points on 500 images). The note sits beside
# NAME-symbol.json, not in the run's manifest, so it travels with a model/ folder or a
# prefix copied on its own.


def note_path(prefix: Path) -> Path:
    """DIR/NAME -> DIR/NAME-reportgen.json."""
    return prefix.with_name(prefix.name + NOTE)


def write_note(prefix: Path, pixels: str, trained: bool) -> Path:
    """Record how the model at `prefix` is fed; `trained`: reportgen trained it so."""
    body = {
        "pixels": pixels,  # "unit": divided by 255; "raw": 0-255
        "trained_by": f"reportgen {__version__}" if trained else None,  # None: a choice made with --pixels
    }
    return write_json(note_path(prefix), body)


def read_note(prefix: Path) -> dict[str, Any] | None:
    """The note beside the model at `prefix`, or None when there is none."""
    path = note_path(prefix)
    if not path.is_file():
        return None
    body = read_json(path)
    if not isinstance(body, dict) or body.get("pixels") not in PIXELS:
        raise ModelError(f'{path}: not a reportgen model note (no "pixels": "unit" or "raw")')
    return body
