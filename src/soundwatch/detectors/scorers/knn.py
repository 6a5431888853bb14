"""k-nearest-neighbour scorer: domain-aware, cosine or Euclidean, optional k-means on source."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.base import RowScorer
from soundwatch.detectors.scorers.index import INDEXES, kmeans_bank, nearest, unit_rows

__all__ = ["BankScorer", "KNNScorer", "knn_distance", "nearest", "split_banks", "unit_rows"]

log = logging.getLogger(__name__)


def knn_distance(queries: np.ndarray, bank: np.ndarray, k: int, metric: str,
                 index: str = "flat", seed: int = 0) -> np.ndarray:
    """Mean distance of each query to its ``k`` nearest rows of ``bank`` (capped at ``m``).

    Args:
        queries: ``[n, d]``.
        bank: ``[m, d]`` (unit rows for ``"cosine"``).
        k: Neighbours.
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        index: ``"flat"`` (exact), ``"ivf"`` or ``"auto"`` (:func:`nearest`).
        seed: Seed of an IVF index.
    """
    return nearest(queries, bank, max(1, int(k)), metric, index=index, seed=seed)[0].mean(axis=1)


def split_banks(x: np.ndarray, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(source rows, target rows)`` of ``x``: views when the target rows come last."""
    n_source = int((~is_target).sum())
    if not is_target[:n_source].any():
        return x[:n_source], x[n_source:]
    return x[~is_target], x[is_target]


class BankScorer(RowScorer):
    """Base of the k-NN scorers: a source and a target bank of training vectors.

    A vector's score is the smaller of its k-NN distances to the non-empty banks
    (:meth:`_bank_scores` may change what is computed against one bank). Banks hold every
    training vector (``max_rows`` ``None``) in float32 (half the memory; distances are
    still computed in float64 from those values), rows grouped by domain so that the two
    banks are views of one array, and are searched through
    :func:`~soundwatch.detectors.scorers.index.nearest` (faiss, exact unless ``index``
    says otherwise); ``n_centroids``, where a subclass offers it, summarises a bank by
    MiniBatchKMeans centres.
    """

    row_dtype = np.float32
    group_domains = True
    n_neighbors: int
    metric: str

    def validate(self) -> None:  # noqa: D102
        super().validate()
        names = self.param_names()  # the checks of the parameters the k-NN scorers share
        if "n_neighbors" in names:
            self._check_int("n_neighbors")
        if "metric" in names:
            self._check_choice("metric", ("cosine", "euclidean"))
        for flag in ("domain_aware", "domain_wise"):
            if flag in names:
                self._check_choice(flag, (True, False))
        if hasattr(self, "index"):
            self._check_choice("index", INDEXES)
        if getattr(self, "n_centroids", None) is not None:
            self._check_int("n_centroids")

    def _index(self) -> str:
        return getattr(self, "index", "flat")

    def _prepared(self, x: np.ndarray) -> np.ndarray:
        if self.metric != "cosine":
            return x
        return unit_rows(x).astype(x.dtype, copy=False)

    def _compressed(self, bank: np.ndarray) -> np.ndarray:
        """``bank`` summarised by ``n_centroids`` k-means centres when it is larger."""
        return kmeans_bank(bank, getattr(self, "n_centroids", None), self.metric, self.seed)

    def _nearest(self, x: np.ndarray, bank: np.ndarray, k: int,
                 exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
        return nearest(x, bank, k, self.metric, exclude_self=exclude_self, index=self._index(),
                       seed=self.seed)

    def _bank_scores(self, x: np.ndarray, which: str, bank: np.ndarray) -> np.ndarray:
        return self._nearest(x, bank, max(1, int(self.n_neighbors)))[0].mean(axis=1)

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
        n_centroids: Summarise each bank larger than this by as many MiniBatchKMeans
            centres (``None``: every training vector; for very large sets).
        standardize: Standardise each dimension with the training mean and std first.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item distances (one item when pooled).
        max_rows: Most training vectors kept (a random subset beyond; ``None``: all).
        index: ``"flat"`` (exact faiss search), ``"ivf"`` (approximate, for banks of
            millions of vectors) or ``"auto"`` (IVF beyond 2 million vectors).
        seed: Seed of that subset and of k-means.
    """

    requires: ClassVar[str] = "vectors"

    def __init__(self, *, n_neighbors: int = 1, metric: str = "cosine", domain_aware: bool = True,
                 kmeans_source: int | None = None, n_centroids: int | None = None,
                 standardize: bool = False, aggregate: str = "mean",
                 max_rows: int | None = None, index: str = "auto", seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        if self.kmeans_source is not None:
            self._check_int("kmeans_source")

    def _fit_rows(self, x: np.ndarray, domains: np.ndarray) -> None:
        x = self._prepared(x)
        is_target = domains == "target" if self.domain_aware else np.zeros(len(x), bool)
        source, target = split_banks(x, is_target)
        del x
        if len(source) and self.kmeans_source and self.kmeans_source < len(source):
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=int(self.kmeans_source), n_init=3, random_state=self.seed)
            source = km.fit(source).cluster_centers_
            source = self._prepared(source).astype(self.row_dtype)
        source, target = self._compressed(source), self._compressed(target)
        if len(source) and len(source) < self.n_neighbors:
            log.warning("knn: %d training vectors for k=%d; using k=%d", len(source),
                        self.n_neighbors, len(source))
        self.bank_source_ = source
        self.bank_target_ = target
