"""Stage 4: every layer's output for a few test digits, the learned kernels, and their summaries.

The seed grouped its eleven internal symbols and bound them to an executor; here the
same group (model.Network.layers, for a LeNet trained here or one loaded) becomes one
hybridized Gluon SymbolBlock that shares the network's parameters, so a single forward
pass returns all eleven layers for a batch of images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen import runfolder
from reportgen.data import batches
from reportgen.errors import DataError, ReportgenError
from reportgen.layers import KERNEL_SHAPES, LAYERS, SATURATION, SHAPES

if TYPE_CHECKING:
    import mxnet as mx

    from reportgen.model import Network


@dataclass(frozen=True)
class Inspection:
    indices: np.ndarray  # (c,) int64, test-set index of each case
    labels: np.ndarray  # (c,) int64
    predictions: np.ndarray  # (c,) int64, argmax of softm
    outputs: dict[str, np.ndarray]  # layer -> (c, *SHAPES[layer]) float32, in LAYERS order
    kernels: dict[str, np.ndarray]  # "conv1" (20,1,5,5), "conv2" (50,20,5,5) float32

    def summaries(self) -> list[dict]:
        """min, max, mean, share saturated (|x| > SATURATION) and share exactly 0, per case and layer."""
        rows = []
        for case, index in enumerate(self.indices):
            for layer, values in self.outputs.items():
                x = values[case]
                rows.append(
                    {
                        "case": case,
                        "index": int(index),
                        "layer": layer,
                        "min": float(x.min()),
                        "max": float(x.max()),
                        "mean": float(x.mean(dtype=np.float64)),
                        "saturated": float(np.mean(np.abs(x) > SATURATION)),
                        "zeros": float(np.mean(x == 0)),
                    }
                )
        return rows

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays as inspection.npz names them."""
        return {
            **self.outputs,
            "indices": self.indices,
            "labels": self.labels,
            "predictions": self.predictions,
            **{f"kernel_{name}": kernel for name, kernel in self.kernels.items()},
        }

    def save(self, path: Path | str) -> Path:
        """Write inspection.npz atomically, with the same bytes for the same inspection."""
        return runfolder.write_npz(Path(path), self.arrays())

    @classmethod
    def load(cls, path: Path | str) -> Inspection:
        """Read an inspection.npz back; a missing or malformed file is a DataError."""
        path = Path(path)
        return cls._from_arrays(path, runfolder.read_npz(path, "inspection"))

    @classmethod
    def _from_arrays(cls, path: Path, arrays: dict[str, np.ndarray]) -> Inspection:
        def take(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            if name not in arrays:
                raise DataError(f"{path}: no array '{name}' (not a reportgen inspection file)")
            array = arrays[name]
            if not np.issubdtype(array.dtype, np.number) or array.shape != shape:
                raise DataError(
                    f"{path}: array '{name}' is {array.dtype} {array.shape}, expected {np.dtype(dtype)} {shape}"
                )
            return array.astype(dtype, copy=False)

        if "indices" not in arrays or arrays["indices"].ndim != 1:
            raise DataError(f"{path}: no 1-D array 'indices' (not a reportgen inspection file)")
        cases = len(arrays["indices"])
        return cls(
            indices=take("indices", (cases,), np.int64),
            labels=take("labels", (cases,), np.int64),
            predictions=take("predictions", (cases,), np.int64),
            outputs={layer: take(layer, (cases, *SHAPES[layer]), np.float32) for layer in LAYERS},
            kernels={name: take(f"kernel_{name}", shape, np.float32) for name, shape in KERNEL_SHAPES.items()},
        )


def multi_output(network: Network, ctx: mx.Context) -> mx.gluon.SymbolBlock:
    """A hybridized block whose outputs are the eleven layers, in LAYERS order.

    It shares the network's Parameter objects (no copy), so it always sees the current
    weights. If the parameters do not live on `ctx` yet, a copy is added there: the
    network then runs on its old contexts and on `ctx` alike.
    """
    import mxnet as mx

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


def _check_index(spec: str, index: int, n_test: int) -> int:
    if not 0 <= index < n_test:
        held = f"holds {n_test} images (0-{n_test - 1})" if n_test else "is empty"
        raise DataError(f"--case {spec}: the test set {held}")
    return index


def resolve_cases(specs: list[str], worst_indices: list[int], n_test: int) -> list[int]:
    """Turn --case values ("worst" or a test-set index) into indices, in order, without repeats.

    "worst" is the first image of the worst confusion (worst_indices[0]), as the seed took.
    """
    if not specs:
        raise DataError("no case to inspect: give --case worst or a test-set index")
    cases: list[int] = []
    for spec in specs:
        text = str(spec).strip()
        if text.lower() == "worst":
            if not len(worst_indices):
                raise DataError(
                    f"--case {spec}: the model makes no mistake on the {n_test} test "
                    "images, so there is no worst confusion; give a test-set index"
                )
            index = _check_index(spec, int(worst_indices[0]), n_test)
        elif re.fullmatch(r"-?[0-9]+", text):
            index = _check_index(spec, int(text), n_test)
        else:
            raise DataError(f"--case {spec!r}: neither 'worst' nor a test-set index")
        if index not in cases:
            cases.append(index)
    return cases


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
        _check_index(str(index), int(index), len(images))
    import mxnet as mx

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
