"""k-NN with local density normalisation: a distance divided by the neighbours' own distances."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.index import nearest
from soundwatch.detectors.scorers.knn import BankScorer, split_banks

__all__ = ["LDNKNNScorer", "ldn_scores", "leave_one_out_radius"]

log = logging.getLogger(__name__)

_EPS = 1e-12


def leave_one_out_radius(bank: np.ndarray, k: int, metric: str, index: str = "flat",
                         seed: int = 0) -> np.ndarray:
    """Each bank row's mean distance to its ``k`` nearest *other* rows (its local radius).

    A bank of one row has no neighbour: its radius is 1 (no normalisation). Radii are
    floored at 1e-3 x their median (and 1e-12), so duplicate rows cannot divide by zero.
    """
    if len(bank) < 2:
        return np.ones(len(bank))
    dist, _ = nearest(bank, bank, k, metric, exclude_self=True, index=index, seed=seed)
    radius = dist.mean(axis=1)
    floor = max(_EPS, 1e-3 * float(np.median(radius)))
    return np.maximum(radius, floor)


def ldn_scores(queries: np.ndarray, bank: np.ndarray, radius: np.ndarray, k: int,
               density_neighbors: int, metric: str, index: str = "flat",
               seed: int = 0) -> np.ndarray:
    """Locally density-normalised k-NN distance of each query.

    ``score(q) = mean_{j in N_k(q)} d(q, j) / mean_{j in N_K(q)} radius_j`` where
    ``N_k(q)`` are the ``k`` nearest bank rows of ``q``, ``N_K(q)`` its ``K =
    density_neighbors`` nearest, and ``radius_j`` the leave-one-out k-NN distance of bank
    row ``j`` (:func:`leave_one_out_radius`). A query in a sparse region of the normal
    bank is compared with that region's own spacing, not with the dense regions'.
    """
    reach = max(int(k), int(density_neighbors))
    dist, idx = nearest(queries, bank, reach, metric, index=index, seed=seed)
    numerator = dist[:, : max(1, min(int(k), dist.shape[1]))].mean(axis=1)
    kk = max(1, min(int(density_neighbors), idx.shape[1]))
    denominator = radius[idx[:, :kk]].mean(axis=1)
    return numerator / denominator


@register_scorer("knn_ldn")
class LDNKNNScorer(BankScorer):
    """k-NN distance divided by the neighbours' own k-NN distances (local density normalisation).

    A clip's k-NN distance to the normal bank is divided by the mean leave-one-out k-NN
    distance of its ``density_neighbors`` nearest bank vectors, so a distance is judged
    against how spread out the normal sounds are in that part of the space (a scale-free
    ratio: about 1 for a typical normal clip). With ``domain_aware``, source and target
    training vectors form two banks, each normalised by its own density, and the smaller
    of the two ratios is kept.

    Args:
        n_neighbors: ``k`` of the distance (the clip's and the bank vectors' own).
        density_neighbors: Bank neighbours whose radii normalise a clip's distance.
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        domain_aware: Separate source and target banks, smaller ratio kept.
        standardize: Standardise each dimension with the training mean and std first.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item scores (one item when pooled).
        max_rows: Most training vectors kept (a random subset beyond; ``None``: all).
        index: ``"flat"`` (exact faiss search), ``"ivf"`` or ``"auto"`` (IVF beyond 2
            million vectors).
        seed: Seed of that subset.
    """

    requires: ClassVar[str] = "vectors"

    def __init__(self, *, n_neighbors: int = 1, density_neighbors: int = 2,
                 metric: str = "cosine", domain_aware: bool = True, standardize: bool = False,
                 aggregate: str = "mean", max_rows: int | None = None, index: str = "auto",
                 seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_int("density_neighbors")

    def _fit_rows(self, x: np.ndarray, domains: np.ndarray) -> None:
        x = self._prepared(x)
        is_target = domains == "target" if self.domain_aware else np.zeros(len(x), bool)
        self.bank_source_, self.bank_target_ = split_banks(x, is_target)
        for bank in (self.bank_source_, self.bank_target_):
            if 0 < len(bank) <= self.n_neighbors:
                log.warning("knn_ldn: %d training vectors in a bank for k=%d; radii use k=%d",
                            len(bank), self.n_neighbors, max(1, len(bank) - 1))
        self.radius_source_ = leave_one_out_radius(self.bank_source_, self.n_neighbors,
                                                   self.metric, self._index(), self.seed)
        self.radius_target_ = leave_one_out_radius(self.bank_target_, self.n_neighbors,
                                                   self.metric, self._index(), self.seed)

    def _bank_scores(self, x: np.ndarray, which: str, bank: np.ndarray) -> np.ndarray:
        return ldn_scores(x, bank, getattr(self, f"radius_{which}_"), self.n_neighbors,
                          self.density_neighbors, self.metric, self._index(), self.seed)

    def _extra_state(self) -> tuple[str, ...]:
        return ("radius_source", "radius_target")
