"""Nearest-neighbour search for k-NN banks: faiss (exact or IVF) with a float64 re-rank.

Every k-NN scorer finds neighbours through :func:`nearest`. With faiss (``faiss-cpu``, a
base dependency) a float32 bank is searched exactly where it lies (``faiss.knn``: L2, or
inner product on unit rows for cosine; no index copy), so a bank of any size is searched
in bounded memory: faiss scans the bank in blocks and keeps only each query's best
candidates. The candidates faiss returns (``k`` plus a margin, in float32) are then
re-ranked with float64 distances, so scores keep float64 precision and the neighbours
are the exact ones. Without faiss (the export runtime needs only numpy) the same
distances come from chunked numpy products, the chunk sized to the bank.

For very large banks (``index="ivf"``, or ``"auto"`` beyond :data:`IVF_MIN_ROWS` rows) an
inverted-file index (``IndexIVFFlat``, ``4 sqrt(m)`` lists trained by faiss's k-means on
a seeded sample, ``nprobe`` lists visited) trades exactness for speed; the candidates are
re-ranked the same way.
"""

from __future__ import annotations

import logging
import math

import numpy as np

__all__ = ["INDEXES", "IVF_MIN_ROWS", "have_faiss", "kmeans_bank", "nearest", "nearest_numpy",
           "unit_rows"]

log = logging.getLogger(__name__)

INDEXES = ("auto", "flat", "ivf")
"""``index`` choices of the k-NN scorers."""
IVF_MIN_ROWS = 2_000_000
"""``index="auto"`` switches from exact search to IVF beyond this many bank rows."""

_EPS = 1e-12
_MARGIN = 8
"""Extra float32 candidates re-ranked in float64 (ties within float32 rounding)."""
_QUERY_CHUNK = 4096
_RERANK_CELLS = 2_000_000
"""Candidate values gathered per re-rank chunk (16 MB of float64)."""
_NUMPY_CELLS = 4_000_000
"""Distance-matrix cells per numpy chunk (32 MB of float64)."""


def have_faiss() -> bool:
    """Whether faiss can be imported (it is not on an export runtime box)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)


def _exact(q: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Float64 distances of each query row ``q [n, d]`` to its candidates ``b [n, c, d]``."""
    q = np.asarray(q, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if metric == "cosine":
        return 1.0 - np.einsum("nd,ncd->nc", unit_rows(q), b)
    # the expansion |q|^2 + |b|^2 - 2 q.b, as the numpy search computes it
    sq = (q**2).sum(axis=1)[:, None] + (b**2).sum(axis=2) - 2.0 * np.einsum("nd,ncd->nc", q, b)
    return np.sqrt(np.maximum(sq, 0.0))


def nearest_numpy(queries: np.ndarray, bank: np.ndarray, k: int, metric: str,
                  exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest` with numpy only: exact, chunked so one chunk holds about 4 M distances."""
    m = len(bank) - int(exclude_self)
    k = max(0, min(int(k), m))
    dist_out = np.empty((len(queries), k))
    idx_out = np.empty((len(queries), k), dtype=np.int64)
    if k == 0:
        return dist_out, idx_out
    bank = np.asarray(bank, dtype=np.float64)
    bank_sq = (bank**2).sum(axis=1) if metric == "euclidean" else None
    chunk = max(1, min(2048, _NUMPY_CELLS // max(1, len(bank))))
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start : start + chunk], dtype=np.float64)
        if metric == "cosine":
            dist = 1.0 - unit_rows(q) @ bank.T
        else:
            sq = (q**2).sum(axis=1)[:, None] + bank_sq[None, :] - 2.0 * q @ bank.T
            dist = np.sqrt(np.maximum(sq, 0.0))
        if exclude_self:
            rows = np.arange(len(q))
            dist[rows, start + rows] = np.inf
        if k < dist.shape[1]:
            idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
        else:
            idx = np.tile(np.arange(dist.shape[1]), (len(q), 1))
        d = np.take_along_axis(dist, idx, axis=1)
        order = np.argsort(d, axis=1, kind="stable")
        dist_out[start : start + len(q)] = np.take_along_axis(d, order, axis=1)
        idx_out[start : start + len(q)] = np.take_along_axis(idx, order, axis=1)
    return dist_out, idx_out


class _FlatSearch:
    """Exact faiss search straight on the bank's memory (``faiss.knn``: no index copy)."""

    def __init__(self, bank32: np.ndarray, metric: str) -> None:
        import faiss

        self.bank32 = bank32
        self.metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2

    def search(self, q32: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        return faiss.knn(q32, self.bank32, k, metric=self.metric)


def _faiss_index(bank32: np.ndarray, metric: str, index: str, nprobe: int, seed: int):
    import faiss

    m, d = bank32.shape
    if index == "auto":
        index = "ivf" if m > IVF_MIN_ROWS else "flat"
    if index == "flat":
        return _FlatSearch(bank32, metric)
    flat = faiss.IndexFlatIP(d) if metric == "cosine" else faiss.IndexFlatL2(d)
    nlist = max(1, min(m // 39, int(4 * math.sqrt(m))))  # faiss wants >= 39 points per list
    measure = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    ivf = faiss.IndexIVFFlat(flat, d, nlist, measure)
    rng = np.random.default_rng(seed)
    sample = bank32 if m <= 256 * nlist else bank32[np.sort(rng.choice(m, 256 * nlist,
                                                                       replace=False))]
    ivf.cp.seed = int(seed)
    ivf.train(sample)
    ivf.add(bank32)
    ivf.nprobe = max(1, min(int(nprobe), nlist))
    return ivf


def nearest(queries: np.ndarray, bank: np.ndarray, k: int, metric: str,
            exclude_self: bool = False, index: str = "flat", nprobe: int = 32,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float64 distances and indices of each query's ``k`` nearest bank rows, nearest first.

    Args:
        queries: ``[n, d]``.
        bank: ``[m, d]`` (unit rows for ``"cosine"``); float32 or float64.
        k: Neighbours, capped at the rows available.
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        exclude_self: ``queries`` is ``bank``: row ``i`` is not its own neighbour.
        index: ``"flat"`` (exact), ``"ivf"`` (approximate) or ``"auto"`` (IVF beyond
            :data:`IVF_MIN_ROWS` rows).
        nprobe: Lists an IVF search visits.
        seed: Seed of the IVF training sample and k-means.

    Returns:
        ``(dist [n, k'], index [n, k'])`` with ``k' = min(k, m - exclude_self)``.
    """
    m = len(bank) - int(exclude_self)
    k = max(0, min(int(k), m))
    if k == 0 or len(queries) == 0 or not have_faiss():
        return nearest_numpy(queries, bank, k, metric, exclude_self)
    bank32 = np.ascontiguousarray(bank, dtype=np.float32)
    search = _faiss_index(bank32, metric, index, nprobe, seed)
    wanted = min(len(bank), k + int(exclude_self) + _MARGIN)
    dist_out = np.empty((len(queries), k))
    idx_out = np.empty((len(queries), k), dtype=np.int64)
    # faiss searches blocks of queries; the candidates are re-ranked in smaller blocks
    step = max(1, min(_QUERY_CHUNK, _RERANK_CELLS // (wanted * bank.shape[1] or 1)))
    for outer in range(0, len(queries), _QUERY_CHUNK):
        block = np.asarray(queries[outer : outer + _QUERY_CHUNK], dtype=np.float64)
        b32 = np.ascontiguousarray(unit_rows(block) if metric == "cosine" else block,
                                   dtype=np.float32)
        _, cands = search.search(b32, wanted)
        for inner in range(0, len(block), step):
            start = outer + inner
            q, cand = block[inner : inner + step], cands[inner : inner + step]
            missing = cand < 0  # IVF: fewer candidates than asked in the lists visited
            cand = np.where(missing, 0, cand)
            dist = _exact(q, bank[cand], metric)
            dist[missing] = np.inf
            if exclude_self:
                dist[cand == (start + np.arange(len(q)))[:, None]] = np.inf
            order = np.argsort(dist, axis=1, kind="stable")[:, :k]
            dist_out[start : start + len(q)] = np.take_along_axis(dist, order, axis=1)
            idx_out[start : start + len(q)] = np.take_along_axis(cand, order, axis=1)
    return dist_out, idx_out


def kmeans_bank(bank: np.ndarray, n_centroids: int | None, metric: str, seed: int,
                ) -> np.ndarray:
    """A bank summarised by ``n_centroids`` k-means centres (MiniBatchKMeans), if larger.

    Cosine banks get unit-length centres. A bank with at most ``n_centroids`` rows, or
    ``n_centroids`` ``None``, is returned unchanged.
    """
    if n_centroids is None or len(bank) <= int(n_centroids):
        return bank
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=int(n_centroids), random_state=int(seed), n_init=3,
                         batch_size=max(1024, 4 * int(n_centroids)))
    centres = km.fit(bank).cluster_centers_
    if metric == "cosine":
        centres = unit_rows(centres)
    return centres.astype(bank.dtype, copy=False)
