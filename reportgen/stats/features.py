"""A network's feature space in numbers: principal components and nearest neighbours.

numpy only, and nothing from reportgen (as sklearn.metrics stands apart from any model): the
values in, plain arrays out, the same arrays for the same values.

- `pca`: the first principal components of a set of feature vectors. The data are centred in
  float64 and the components are the leading eigenvectors of the centred cross-product matrix
  Xc^T Xc (d x d), which are the right singular vectors of Xc, its eigenvalues the squared
  singular values: the SVD of the data without forming the n x d factor U. On 10,000 x 500
  features that is 2.5 GFLOP and a 500 x 500 eigenproblem (a fraction of a second) where
  numpy's SVD of the data matrix took 5 s or more here. An eigenvector's sign is arbitrary,
  so each component is turned so that its loading of largest magnitude is positive (the
  lowest such index on a tie): the same data give the same picture on any machine.
- `Nearest`: the k nearest reference vectors of each query by Euclidean distance, fed the
  references chunk by chunk, so that 60,000 training images' features never need to be held
  at once. Candidates are found with |q|^2 + |r|^2 - 2 q.r (one matrix product per chunk) and
  their distances then computed again exactly (math.fsum of the squared differences in
  float64): the result does not depend on the chunk size or the BLAS, and ties (equal exact
  distances, as for duplicate references) go to the lowest reference index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Headroom over the rounding error of |q|^2 + |r|^2 - 2 q.r in float64 (about d * 1.1e-16 *
# (|q|^2 + |r|^2), 6e-14 relative for d = 500): a candidate is kept when its quick distance is
# within this share of the squared norms of the k-th best, so no true neighbour is missed.
_SLACK = 1e-9


@dataclass(frozen=True, eq=False)
class Projection:
    """The first principal components of n feature vectors of d values."""

    scores: np.ndarray  # (n, c) float64: each vector's coordinates on the components
    components: np.ndarray  # (c, d) float64: unit vectors, the largest |loading| of each positive
    mean: np.ndarray  # (d,) float64: the centre the scores are measured from
    explained_variance: np.ndarray  # (c,) float64: variance along each component (n - 1 in the denominator)
    explained_variance_ratio: np.ndarray  # (c,) float64: each component's share of the total variance


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be a 2-D numeric array, not {array.dtype} {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def fix_signs(components: np.ndarray) -> np.ndarray:
    """Each row turned so that its entry of largest magnitude is positive (the first on a tie)."""
    components = np.asarray(components, dtype=np.float64)
    largest = np.abs(components).argmax(axis=1)
    signs = np.sign(components[np.arange(len(components)), largest])
    signs[signs == 0] = 1.0  # an all-zero row stays as it is
    return components * signs[:, None]


def pca(features: np.ndarray, n_components: int = 2) -> Projection:
    """The first `n_components` principal components of the rows of `features` (n x d).

    Deterministic: float64 throughout, the sign of each component fixed (fix_signs). A
    direction of zero variance (fewer distinct vectors than components) gets a zero ratio.
    """
    x = _as_matrix(features, "features")
    n, d = x.shape
    if not 1 <= n_components <= d:
        raise ValueError(f"n_components must be between 1 and {d}, not {n_components}")
    if n < 2:
        raise ValueError(f"a principal component needs at least 2 vectors, not {n}")
    mean = x.mean(axis=0, dtype=np.float64)
    centred = x.astype(np.float64)  # one n x d float64 copy (40 MB for 10,000 x 500), centred in place
    centred -= mean
    gram = centred.T @ centred  # d x d, symmetric positive semi-definite
    eigenvalues, eigenvectors = np.linalg.eigh(gram)  # ascending
    order = np.argsort(-eigenvalues, kind="stable")[:n_components]
    components = fix_signs(eigenvectors[:, order].T)
    # Rounding can leave a zero eigenvalue a hair below 0; the total is the trace, exactly
    # the sum of squared deviations.
    top = np.clip(eigenvalues[order], 0.0, None)
    total = float(np.einsum("ij,ij->", centred, centred))
    ratio = top / total if total > 0 else np.zeros_like(top)
    return Projection(
        scores=centred @ components.T,
        components=components,
        mean=mean,
        explained_variance=top / (n - 1),
        explained_variance_ratio=ratio,
    )


def exact_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance, the squared differences summed exactly (math.fsum) in float64:
    the same number whatever the order or alignment of the values."""
    difference = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return math.sqrt(math.fsum((difference * difference).tolist()))


class Nearest:
    """The k nearest references of each query, with references given in chunks.

    nearest = Nearest(queries, k=5)
    for offset, chunk in ...: nearest.add(chunk, offset)   # chunk: rows offset, offset+1, ...
    indices, distances = nearest.result()                  # (m, k) int64, (m, k) float64

    Chunks may come in any order and of any size; the result is the same. Each query keeps
    its best k (by exact distance, then index) and nothing else: memory is the queries, one
    chunk and m x k candidates.
    """

    def __init__(self, queries: np.ndarray, k: int = 5) -> None:
        self.queries = _as_matrix(queries, "queries").astype(np.float64)
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        self.k = k
        self._norms = np.einsum("ij,ij->i", self.queries, self.queries)
        m = len(self.queries)
        # Per query, its best so far as (exact distance, reference index) pairs, in order.
        self._best: list[list[tuple[float, int]]] = [[] for _ in range(m)]
        self.seen = 0  # references added so far

    def add(self, chunk: np.ndarray, offset: int) -> None:
        """References `offset`, `offset` + 1, ... are the rows of `chunk`."""
        refs = _as_matrix(chunk, "references")
        if refs.shape[1] != self.queries.shape[1]:
            raise ValueError(f"references have {refs.shape[1]} values each, the queries {self.queries.shape[1]}")
        if offset < 0:
            raise ValueError(f"offset must be at least 0, not {offset}")
        if not len(refs) or not len(self.queries):
            self.seen += len(refs)
            return
        refs = refs.astype(np.float64)
        ref_norms = np.einsum("ij,ij->i", refs, refs)
        quick = self._norms[:, None] + ref_norms[None, :] - 2.0 * (self.queries @ refs.T)  # (m, c) squared
        scale = float(ref_norms.max())
        for q in range(len(self.queries)):
            row = quick[q]
            kth = np.partition(row, min(self.k, len(row)) - 1)[min(self.k, len(row)) - 1]
            best = self._best[q]
            if len(best) == self.k:
                kth = min(kth, best[-1][0] ** 2)
            slack = _SLACK * (self._norms[q] + scale + kth) + 1e-300
            for j in np.flatnonzero(row <= kth + slack):
                best.append((exact_distance(self.queries[q], refs[j]), offset + int(j)))
            best.sort()  # by exact distance, then by index: ties go to the lowest index
            del best[self.k :]
        self.seen += len(refs)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances), each (m, k): nearest first. Fewer than k references is an error."""
        m = len(self.queries)
        if any(len(best) < self.k for best in self._best) or (m and self.seen < self.k):
            raise ValueError(f"{self.k} neighbours asked for, {self.seen} references given")
        indices = np.array([[i for _, i in best] for best in self._best], dtype=np.int64).reshape(m, self.k)
        distances = np.array([[d for d, _ in best] for best in self._best], dtype=np.float64).reshape(m, self.k)
        return indices, distances


def nearest(
    queries: np.ndarray, references: np.ndarray, k: int = 5, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `references` to each row of `queries` (Euclidean): (indices,
    distances), each (m, k), nearest first, ties to the lowest index. In chunks of `chunk` rows."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    refs = _as_matrix(references, "references")
    search = Nearest(queries, k)
    for start in range(0, len(refs), chunk):
        search.add(refs[start : start + chunk], start)
    return search.result()
