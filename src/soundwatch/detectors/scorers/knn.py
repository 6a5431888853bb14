"""k-nearest-neighbour scorer: domain-aware, cosine or Euclidean, optional k-means on source."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.base import RowScorer

__all__ = ["BankScorer", "KNNScorer", "knn_distance", "nearest", "unit_rows"]

log = logging.getLogger(__name__)

_EPS = 1e-12
_CHUNK = 2048


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)


def nearest(queries: np.ndarray, bank: np.ndarray, k: int, metric: str,
            exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of each query's ``k`` nearest bank rows, nearest first.

    Args:
        queries: ``[n, d]``.
        bank: ``[m, d]`` (unit rows for ``"cosine"``).
        k: Neighbours, capped at the rows available.
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        exclude_self: ``queries`` is ``bank``: row ``i`` is not its own neighbour.

    Returns:
        ``(dist [n, k'], index [n, k'])`` with ``k' = min(k, m - exclude_self)``.
    """
    m = len(bank) - int(exclude_self)
    k = max(0, min(int(k), m))
    dist_out = np.empty((len(queries), k))
    idx_out = np.empty((len(queries), k), dtype=np.int64)
    if k == 0:
        return dist_out, idx_out
    bank_sq = (bank**2).sum(axis=1) if metric == "euclidean" else None
    for start in range(0, len(queries), _CHUNK):
        q = queries[start : start + _CHUNK]
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


def knn_distance(queries: np.ndarray, bank: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Mean distance of each query to its ``k`` nearest rows of ``bank`` (capped at ``m``).

    Args:
        queries: ``[n, d]``.
        bank: ``[m, d]`` (unit rows for ``"cosine"``).
        k: Neighbours.
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
    """
    return nearest(queries, bank, max(1, int(k)), metric)[0].mean(axis=1)


class BankScorer(RowScorer):
    """Base of the k-NN scorers: a source and a target bank of training vectors.

    A vector's score is the smaller of its k-NN distances to the non-empty banks
    (:meth:`_bank_scores` may change what is computed against one bank).
    """

    n_neighbors: int
    metric: str

    def _prepared(self, x: np.ndarray) -> np.ndarray:
        return unit_rows(x) if self.metric == "cosine" else x

    def _bank_scores(self, x: np.ndarray, which: str, bank: np.ndarray) -> np.ndarray:
        return knn_distance(x, bank, self.n_neighbors, self.metric)

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        best = np.full(len(x), np.inf)
        for which in ("source", "target"):
            bank = getattr(self, f"bank_{which}_")
            if len(bank):
                best = np.minimum(best, self._bank_scores(x, which, bank))
        return best

    def _extra_state(self) -> tuple[str, ...]:
        """Names of further learned arrays (attributes ``<name>_``) to save."""
        return ()

    def _state_rows(self) -> dict[str, np.ndarray]:
        names = ("bank_source", "bank_target", *self._extra_state())
        return {name: getattr(self, f"{name}_") for name in names}

    def _load_rows(self, arrays: dict[str, np.ndarray]) -> None:
        for name in ("bank_source", "bank_target", *self._extra_state()):
            setattr(self, f"{name}_", arrays[name])


@register_scorer("knn")
class KNNScorer(BankScorer):
    """Mean distance to the ``k`` nearest training vectors; domain-aware as DCASE top systems.

    With ``domain_aware``, the source and the target training vectors form two banks and
    a vector's score is the smaller of its two k-NN distances (a clip is normal if it
    resembles either domain); the source bank may first be summarised by ``kmeans_source``
    k-means centres, so that the few target clips are not outnumbered.

    Args:
        n_neighbors: ``k``.
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        domain_aware: Separate source and target banks, smaller distance kept.
        kmeans_source: Replace the source bank by this many k-means centres (``None``: off).
        standardize: Standardise each dimension with the training mean and std first.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item distances (one item when pooled).
        max_rows: Most training vectors kept (a random subset beyond).
        seed: Seed of that subset and of k-means.
    """

    requires: ClassVar[str] = "vectors"

    def __init__(self, *, n_neighbors: int = 1, metric: str = "cosine", domain_aware: bool = True,
                 kmeans_source: int | None = None, standardize: bool = False,
                 aggregate: str = "mean", max_rows: int = 20000, seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_int("n_neighbors")
        self._check_choice("metric", ("cosine", "euclidean"))
        self._check_choice("domain_aware", (True, False))
        if self.kmeans_source is not None:
            self._check_int("kmeans_source")

    def _fit_rows(self, x: np.ndarray, domains: np.ndarray) -> None:
        x = self._prepared(x)
        is_target = domains == "target" if self.domain_aware else np.zeros(len(x), bool)
        source, target = x[~is_target], x[is_target]
        if len(source) and self.kmeans_source and self.kmeans_source < len(source):
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=int(self.kmeans_source), n_init=3, random_state=self.seed)
            source = km.fit(source).cluster_centers_
            source = self._prepared(source)
        if len(source) and len(source) < self.n_neighbors:
            log.warning("knn: %d training vectors for k=%d; using k=%d", len(source),
                        self.n_neighbors, len(source))
        self.bank_source_ = source
        self.bank_target_ = target
