"""The inspection: every layer's output for a few test digits, the learned kernels, their
summaries, and inspection.npz; which digits (--case) to look at.

net.inside computes it through one multi-output graph.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from reportgen.errors import DataError
from reportgen.layers import KERNEL_SHAPES, LAYERS, SATURATION, SHAPES
from reportgen.run import files

WORST = "worst"
# A --case: a test-set index, or WORST, the first image of the worst confusion (as the seed took).
Case = int | Literal["worst"]


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
        return files.write_npz(Path(path), self.arrays())

    @classmethod
    def load(cls, path: Path | str) -> Inspection:
        """Read an inspection.npz back; a missing or malformed file is a DataError.

        Every array's shape and type is checked from its header before any is read; then
        the values: indices of test images (the figures check them against the data loaded),
        labels and predictions digits, outputs and kernels finite.
        """
        path = Path(path)
        arrays = files.read_npz(path, "inspection", EXPECTED, lambda headers: _check_headers(path, headers))
        inspected = cls(
            indices=arrays["indices"].astype(np.int64),
            labels=arrays["labels"].astype(np.int64),
            predictions=arrays["predictions"].astype(np.int64),
            outputs={layer: arrays[layer].astype(np.float32, copy=False) for layer in LAYERS},
            kernels={name: arrays[f"kernel_{name}"].astype(np.float32, copy=False) for name in KERNEL_SHAPES},
        )
        _check_values(path, inspected)
        return inspected


# What inspection.npz holds: per case, its index, label, prediction and every layer's output;
# the two kernels. name -> (shape after the cases' axis, or the whole shape for a kernel; type).
EXPECTED: dict[str, tuple[tuple[int, ...], type]] = {
    "indices": ((), np.int64),
    "labels": ((), np.int64),
    "predictions": ((), np.int64),
    **{layer: (SHAPES[layer], np.float32) for layer in LAYERS},
    **{f"kernel_{name}": (shape, np.float32) for name, shape in KERNEL_SHAPES.items()},
}


def _check_headers(path: Path, headers: dict[str, files.Header]) -> None:
    if "indices" not in headers or len(headers["indices"][0]) != 1:
        raise DataError(f"{path}: no 1-D array 'indices' (not a reportgen inspection file)")
    cases = headers["indices"][0][0]
    if cases == 0:
        raise DataError(f"{path}: inspects no test image")
    for name, (shape, kind) in EXPECTED.items():
        if name not in headers:
            raise DataError(f"{path}: no array '{name}' (not a reportgen inspection file)")
        wanted = shape if name.startswith("kernel_") else (cases, *shape)
        found, dtype = headers[name]
        if found != wanted or (np.dtype(kind).kind == "i") != (dtype.kind in "iu"):
            raise DataError(f"{path}: array '{name}' is {dtype} {found}, expected {np.dtype(kind)} {wanted}")


def _check_values(path: Path, inspected: Inspection) -> None:
    bad = np.flatnonzero(inspected.indices < 0)
    if bad.size:
        raise DataError(f"{path}: case {bad[0]}: index {inspected.indices[bad[0]]} is not a test-set index")
    for name in ("labels", "predictions"):
        values = getattr(inspected, name)
        if ((values < 0) | (values > 9)).any():
            raise DataError(f"{path}: array '{name}' holds {values[(values < 0) | (values > 9)][0]}, not a digit")
    for name, array in (*inspected.outputs.items(), *(("kernel_" + k, v) for k, v in inspected.kernels.items())):
        if not np.isfinite(array).all():
            raise DataError(f"{path}: array '{name}' holds NaN or an infinity")


def parse_case(text: str) -> Case:
    """A --case as typed: "worst" (any case) or a test-set index."""
    spec = str(text).strip()
    if spec.lower() == WORST:
        return "worst"
    if re.fullmatch(r"-?[0-9]+", spec):
        return int(spec)
    raise DataError(f"--case {text!r}: neither 'worst' nor a test-set index")


def check_index(index: int, n_test: int) -> int:
    """`index` if the test set holds it; else a DataError naming the test set's range."""
    if not 0 <= index < n_test:
        held = f"holds {n_test} images (0-{n_test - 1})" if n_test else "is empty"
        raise DataError(f"--case {index}: the test set {held}")
    return index


def resolve_cases(cases: Sequence[Case], worst_indices: Sequence[int], n_test: int) -> list[int]:
    """The test-set indices of the cases, in order, without repeats.

    WORST is the first image of the worst confusion (worst_indices[0]), as the seed took.
    """
    if not cases:
        raise DataError("no case to inspect: give --case worst or a test-set index")
    chosen: list[int] = []
    for case in cases:
        if case == WORST:
            if not len(worst_indices):
                raise DataError(
                    f"--case {WORST}: the model makes no mistake on the {n_test} test "
                    "images, so there is no worst confusion; give a test-set index"
                )
            index = check_index(int(worst_indices[0]), n_test)
        else:
            index = check_index(int(case), n_test)
        if index not in chosen:
            chosen.append(index)
    return chosen
