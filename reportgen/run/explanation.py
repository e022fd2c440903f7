"""The explanation stage's values and their files: `Attributions` (attributions.npz) and
`Features` (features.npz).

Both files may come from someone else's run folder, so reading one checks everything a report
relies on (names, dtypes, shapes, ranges, finite values) and refuses anything else with one
DataError line; no other exception leaves `load`. No mxnet here: `render` reads these files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen.errors import DataError
from reportgen.run import files
from reportgen.run.comparison import SHOWN
from reportgen.run.schema import MAX_COUNT

if TYPE_CHECKING:
    from reportgen.run.comparison import Comparison
    from reportgen.run.evaluation import Evaluation

ATTRIBUTIONS = "attributions.npz"
FEATURES = "features.npz"

N_CLASSES = 10
SIDE = 28  # the images are SIDE x SIDE

# Integrated gradients: at least STEPS intervals of the midpoint rule, doubled for an image
# whose attributions miss completeness, up to MAX_STEPS.
STEPS = 64
MAX_STEPS = 512
# Completeness: the attributions' sum within TOLERANCE of F(x) - F(baseline), relative to that
# difference, or to FLOOR logits when the difference is smaller (see completeness_error).
TOLERANCE = 0.02
FLOOR = 0.1
# Occlusion: a WINDOW x WINDOW square set to 0, moved STRIDE pixels at a time.
WINDOW = 4
STRIDE = 2
NEIGHBOURS = 5  # nearest training images per confident mistake
COMPONENTS = 2  # principal components of the act3 features


def occlusion_positions(window: int, stride: int, side: int = SIDE) -> int:
    """Window positions along one side: (side - window) // stride + 1 (13 for 4 and 2 on 28)."""
    return (side - window) // stride + 1


# -- checking arrays read from a file -------------------------------------------------------------

# What each file holds: name -> (kind, shape). A shape's letters are lengths the file sets
# (the first array holding one fixes it, every other must agree); "k" is the occlusion map's
# side, at most SIDE. A 0-d value is also taken as one element (write_npz stores it so).
Spec = dict[str, tuple[str, tuple[int | str, ...]]]
KINDS = {"int": ("iu", "integers"), "float": ("f", "floating-point numbers"), "uint8": ("", "uint8 pixels")}


def _shown(shape: tuple[int | str, ...]) -> str:
    return "x".join(str(n) for n in shape) or "a single value"


def _check_headers(path: Path, what: str, spec: Spec, headers: dict[str, files.Header]) -> dict[str, int]:
    """Every array of `spec` present, of its kind and shape, from the headers alone (before
    anything is allocated); the lengths the file sets, by letter."""
    sizes: dict[str, int] = {}
    for name, (kind, shape) in spec.items():
        if name not in headers:
            raise DataError(f"{path}: no array '{name}' (not a reportgen {what} file)")
        found, dtype = headers[name]
        kinds, said = KINDS[kind]
        if (dtype != np.uint8) if kind == "uint8" else (dtype.kind not in kinds):
            raise DataError(f"{path}: array '{name}' is {dtype}, expected {said}")
        if shape == () and found == (1,):
            found = ()
        fits = len(found) == len(shape)
        for wanted, got in zip(shape, found):
            if isinstance(wanted, str):
                fits = fits and sizes.setdefault(wanted, got) == got and (wanted != "k" or 1 <= got <= SIDE)
            else:
                fits = fits and wanted == got
        if not fits:
            expected = _shown(tuple(sizes.get(n, n) if n in ("n", "m", "p") else n for n in shape))
            raise DataError(f"{path}: array '{name}' has shape {_shown(found)}, expected {expected}")
    return sizes


def _read(path: Path, what: str, spec: Spec) -> dict[str, np.ndarray]:
    """The arrays of `spec`, shapes and kinds checked before they are read; then finite floats."""

    def check(headers: dict[str, files.Header]) -> None:
        _check_headers(path, what, spec, headers)

    arrays = files.read_npz(path, what, spec, check)
    for name, (kind, _) in spec.items():
        if kind == "float" and not np.isfinite(arrays[name]).all():
            raise DataError(f"{path}: array '{name}' holds NaN or infinite values")
    return arrays


def _check(path: Path, ok: bool, message: str) -> None:
    if not ok:
        raise DataError(f"{path}: {message}")


def _int(array: np.ndarray) -> int:
    return int(array.reshape(()))


def _within(path: Path, name: str, values: np.ndarray, n_test: int | None) -> None:
    """Test-set indices: not negative, each once, and with `n_test` below it."""
    _check(path, bool((values >= 0).all()), f"array '{name}' holds a negative test-set index")
    _check(path, len(np.unique(values)) == len(values), f"array '{name}' names a test image twice")
    if n_test is not None:
        _check(path, bool((values < n_test).all()), f"array '{name}': a test image outside the {n_test:,} test images")


# -- attributions ---------------------------------------------------------------------------------


def completeness_error(total: np.ndarray, score_image: np.ndarray, score_baseline: np.ndarray) -> np.ndarray:
    """|sum of attributions - (F(x) - F(baseline))| / max(|F(x) - F(baseline)|, FLOOR), per image.

    Relative to the difference the attributions share out; a difference below FLOOR (a tenth of
    a logit) is judged against FLOOR instead, so that a near-zero difference, where any error is
    a large share, asks for an absolute error of at most TOLERANCE x FLOOR = 0.002 logits.
    """
    difference = np.asarray(score_image, np.float64) - np.asarray(score_baseline, np.float64)
    return np.abs(np.asarray(total, np.float64) - difference) / np.maximum(np.abs(difference), FLOOR)


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make field-wise == ambiguous
class Attributions:
    """Integrated gradients and occlusion for n test images.

    The function explained, F, is a difference of full2 scores (logits, before the softmax):
    F = score[target] - score[versus] for a mistake (target the prediction, versus the label:
    "why 3 rather than 5"), F = score[target] for a right answer (versus -1).
    """

    indices: np.ndarray  # (n,) int64: test-set index of each image, no repeats
    targets: np.ndarray  # (n,) int64: the class whose score is explained (the prediction)
    versus: np.ndarray  # (n,) int64: the class whose score is subtracted (the label), -1 when none
    integrated_gradients: np.ndarray  # (n, 28, 28) float32: black baseline, in the model's input scaling
    occlusion: np.ndarray  # (n, H', W') float32: F(image) - F(image with the window at (r*stride, c*stride) set to 0)
    occlusion_window: int
    occlusion_stride: int
    score_image: np.ndarray  # (n,) float64: F(image)
    score_baseline: np.ndarray  # (n,) float64: F(all-zero image)
    steps: np.ndarray  # (n,) int64: midpoint-rule intervals used for each image (STEPS, or more where refined)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def totals(self) -> np.ndarray:
        """(n,) float64: each image's attributions summed."""
        return self.integrated_gradients.reshape(len(self), -1).sum(axis=1, dtype=np.float64)

    @property
    def completeness(self) -> np.ndarray:
        """(n,) float64: each image's relative completeness error (completeness_error)."""
        return completeness_error(self.totals, self.score_image, self.score_baseline)

    @property
    def complete(self) -> np.ndarray:
        """(n,) bool: completeness holds within TOLERANCE."""
        return self.completeness <= TOLERANCE

    def has(self, index: int) -> bool:
        return bool((self.indices == index).any())

    def position(self, index: int) -> int:
        """Where test image `index` is in these arrays; KeyError when it is not."""
        found = np.flatnonzero(self.indices == index)
        if not len(found):
            raise KeyError(index)
        return int(found[0])

    def warnings(self) -> list[str]:
        """One line per image whose attributions miss completeness, for the console and the report."""
        lines = []
        for i in np.flatnonzero(~self.complete):
            difference = self.score_image[i] - self.score_baseline[i]
            lines.append(
                f"integrated gradients of test image {int(self.indices[i])}: the attributions sum to "
                f"{self.totals[i]:.4g}, the score difference F(image) - F(black) is {difference:.4g} "
                f"(off by {self.completeness[i]:.1%}, more than {TOLERANCE:.0%}, after {int(self.steps[i])} "
                "steps); its map is drawn but does not account for the whole difference"
            )
        return lines

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays as attributions.npz names them."""
        return {
            "indices": np.asarray(self.indices, np.int64),
            "targets": np.asarray(self.targets, np.int64),
            "versus": np.asarray(self.versus, np.int64),
            "integrated_gradients": np.asarray(self.integrated_gradients, np.float32),
            "occlusion": np.asarray(self.occlusion, np.float32),
            "occlusion_window": np.asarray(self.occlusion_window, np.int64),
            "occlusion_stride": np.asarray(self.occlusion_stride, np.int64),
            "score_image": np.asarray(self.score_image, np.float64),
            "score_baseline": np.asarray(self.score_baseline, np.float64),
            "steps": np.asarray(self.steps, np.int64),
        }

    def save(self, path: Path | str) -> Path:
        """Write attributions.npz atomically, with the same bytes for the same values."""
        return files.write_npz(Path(path), self.arrays())

    @classmethod
    def load(cls, path: Path | str, n_test: int | None = None) -> Attributions:
        """Read attributions.npz back; a missing or malformed file is a DataError.

        Every array's kind and shape is checked from its header before any is read; then the
        values: finite, test-set indices (below `n_test` if given) each once, classes 0-9, no
        image explained against its own class, window and stride in 1-28 with the map's side
        they give, at least one step."""
        path = Path(path)
        arrays = _read(path, "attributions", ATTRIBUTION_ARRAYS)
        indices = arrays["indices"].astype(np.int64)
        _within(path, "indices", indices, n_test)
        targets, versus = arrays["targets"].astype(np.int64), arrays["versus"].astype(np.int64)
        _check(path, bool(((targets >= 0) & (targets < N_CLASSES)).all()), "a target outside 0-9")
        _check(path, bool(((versus >= -1) & (versus < N_CLASSES)).all()), "a 'versus' class outside -1-9")
        _check(path, bool((versus != targets).all()), "an image explained against its own class")
        window, stride = _int(arrays["occlusion_window"]), _int(arrays["occlusion_stride"])
        _check(path, 1 <= window <= SIDE, f"occlusion window {window} is not between 1 and {SIDE}")
        _check(path, 1 <= stride <= SIDE, f"occlusion stride {stride} is not between 1 and {SIDE}")
        side = occlusion_positions(window, stride)
        found = arrays["occlusion"].shape[1]
        _check(
            path, found == side, f"occlusion maps of side {found}, a window {window} at stride {stride} gives {side}"
        )
        steps = arrays["steps"].astype(np.int64)
        _check(path, bool((steps >= 1).all()), "an image integrated over fewer than 1 step")
        return cls(
            indices=indices,
            targets=targets,
            versus=versus,
            integrated_gradients=arrays["integrated_gradients"].astype(np.float32),
            occlusion=arrays["occlusion"].astype(np.float32),
            occlusion_window=window,
            occlusion_stride=stride,
            score_image=arrays["score_image"].astype(np.float64),
            score_baseline=arrays["score_baseline"].astype(np.float64),
            steps=steps,
        )


ATTRIBUTION_ARRAYS: Spec = {
    "indices": ("int", ("n",)),
    "targets": ("int", ("n",)),
    "versus": ("int", ("n",)),
    "integrated_gradients": ("float", ("n", SIDE, SIDE)),
    "occlusion": ("float", ("n", "k", "k")),
    "occlusion_window": ("int", ()),
    "occlusion_stride": ("int", ()),
    "score_image": ("float", ("n",)),
    "score_baseline": ("float", ("n",)),
    "steps": ("int", ("n",)),
}


# -- features -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Features:
    """act3's 500 features of every test image, projected; the nearest training images of some."""

    act3_pca: np.ndarray  # (n_test, 2) float32: every test image on the first two principal components
    explained_variance_ratio: np.ndarray  # (2,) float64: each component's share of the variance
    neighbours: np.ndarray  # (m, 5) int64: training-set indices, nearest first
    neighbour_cases: np.ndarray  # (m,) int64: the test image of each row
    neighbour_distances: np.ndarray  # (m, 5) float64: Euclidean distances in act3 space
    neighbour_labels: np.ndarray  # (m, 5) int64: their labels
    neighbour_images: np.ndarray  # (m, 5, 28, 28) uint8: their pixels, so that a report needs no training set
    train_images: int  # how many training images were searched (indices below it)

    def row(self, index: int) -> int:
        """The neighbours row of test image `index`; KeyError when it has none."""
        found = np.flatnonzero(self.neighbour_cases == index)
        if not len(found):
            raise KeyError(index)
        return int(found[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "act3_pca": np.asarray(self.act3_pca, np.float32),
            "explained_variance_ratio": np.asarray(self.explained_variance_ratio, np.float64),
            "neighbours": np.asarray(self.neighbours, np.int64),
            "neighbour_cases": np.asarray(self.neighbour_cases, np.int64),
            "neighbour_distances": np.asarray(self.neighbour_distances, np.float64),
            "neighbour_labels": np.asarray(self.neighbour_labels, np.int64),
            "neighbour_images": np.asarray(self.neighbour_images, np.uint8),
            "train_images": np.asarray(self.train_images, np.int64),
        }

    def save(self, path: Path | str) -> Path:
        """Write features.npz atomically, with the same bytes for the same values."""
        return files.write_npz(Path(path), self.arrays())

    @classmethod
    def load(cls, path: Path | str, n_test: int | None = None) -> Features:
        """Read features.npz back; a missing or malformed file is a DataError.

        Every array's kind and shape is checked from its header before any is read; then the
        values: finite, `n_test` test images projected (if given), shares of the variance,
        cases among the test images, each once, neighbours among the training images searched,
        each once per row, nearest first, labels 0-9."""
        path = Path(path)
        arrays = _read(path, "features", FEATURE_ARRAYS)
        pca, ratio = arrays["act3_pca"], arrays["explained_variance_ratio"].astype(np.float64)
        if n_test is not None:
            _check(path, len(pca) == n_test, f"{len(pca):,} test images projected, the run has {n_test:,}")
        _check(
            path,
            bool((ratio >= 0).all() and ratio.sum() <= 1 + 1e-9 and (np.diff(ratio) <= 1e-12).all()),
            "'explained_variance_ratio' is not two shares of the variance, largest first, summing to at most 1",
        )
        cases = arrays["neighbour_cases"].astype(np.int64)
        _within(path, "neighbour_cases", cases, len(pca))
        neighbours, distances = arrays["neighbours"].astype(np.int64), arrays["neighbour_distances"]
        labels = arrays["neighbour_labels"].astype(np.int64)
        _check(path, bool(((labels >= 0) & (labels < N_CLASSES)).all()), "a neighbour's label outside 0-9")
        train = _int(arrays["train_images"])
        _check(path, NEIGHBOURS <= train <= MAX_COUNT, f"{train} training images searched, not {NEIGHBOURS} or more")
        _check(
            path,
            bool(((neighbours >= 0) & (neighbours < train)).all()),
            f"a neighbour outside the {train} training images searched",
        )
        _check(path, all(len(set(row)) == NEIGHBOURS for row in neighbours.tolist()), "a neighbour listed twice")
        _check(
            path,
            bool((distances >= 0).all() and (np.diff(distances, axis=1) >= 0).all()),
            "neighbour distances that are negative or not nearest first",
        )
        return cls(
            act3_pca=pca.astype(np.float32),
            explained_variance_ratio=ratio,
            neighbours=neighbours,
            neighbour_cases=cases,
            neighbour_distances=distances.astype(np.float64),
            neighbour_labels=labels,
            neighbour_images=arrays["neighbour_images"],
            train_images=train,
        )


FEATURE_ARRAYS: Spec = {
    "act3_pca": ("float", ("p", COMPONENTS)),
    "explained_variance_ratio": ("float", (COMPONENTS,)),
    "neighbour_cases": ("int", ("m",)),
    "neighbours": ("int", ("m", NEIGHBOURS)),
    "neighbour_distances": ("float", ("m", NEIGHBOURS)),
    "neighbour_labels": ("int", ("m", NEIGHBOURS)),
    "neighbour_images": ("uint8", ("m", NEIGHBOURS, SIDE, SIDE)),
    "train_images": ("int", ()),
}


# -- which images ---------------------------------------------------------------------------------

WORST_SHOWN = 10  # the worst pair's images the report shows (report.figures.mistakes.worst_cases)
MISTAKES_SHOWN = 20  # the confident mistakes it shows (report.figures.mistakes.top_errors)
BROKEN_SHOWN = SHOWN  # the images a change broke that it shows


@dataclass(frozen=True)
class Explained:
    """The test images the section explains, by group, each in the order the report shows them:
    every inspected digit, the worst pair's images shown, the most confident mistakes and, with
    a baseline, the images this run broke. Neighbours are found for the mistakes."""

    inspected: tuple[int, ...]
    worst: tuple[int, ...]
    mistakes: tuple[int, ...]
    broken: tuple[int, ...] = ()

    @classmethod
    def of(
        cls,
        inspected: Sequence[int],
        evaluation: Evaluation,
        comparison: Comparison | None = None,
    ) -> Explained:
        return cls(
            inspected=tuple(int(i) for i in inspected),
            worst=tuple(int(i) for i in evaluation.worst_pair.indices[:WORST_SHOWN]),
            mistakes=tuple(m.index for m in evaluation.top_errors[:MISTAKES_SHOWN]),
            broken=tuple(c.index for c in comparison.broken[:BROKEN_SHOWN]) if comparison is not None else (),
        )

    def groups(self) -> list[tuple[str, tuple[int, ...]]]:
        """(group, its test indices) in the report's order; empty groups included."""
        return [
            ("inspected", self.inspected),
            ("worst", self.worst),
            ("mistakes", self.mistakes),
            ("broken", self.broken),
        ]

    def indices(self) -> np.ndarray:
        """Every image of every group once, in the order first shown: what attributions() takes."""
        return np.array(list(dict.fromkeys(i for _, group in self.groups() for i in group)), dtype=np.int64)
