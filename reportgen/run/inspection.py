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
        """Read an inspection.npz back; a missing or malformed file is a DataError."""
        path = Path(path)
        return cls._from_arrays(path, files.read_npz(path, "inspection"))

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
