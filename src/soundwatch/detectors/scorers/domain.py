"""GenRep's back-end for embeddings: per-domain banks, domain-wise normalisation, MemMixup.

Saengthong and Shinozaki, "Deep Generic Representations for Domain-Generalized Anomalous
Sound Detection" (ICASSP 2025, arXiv:2409.05035) score a frozen embedding by its k-NN
distance to a source and a target memory bank (``d_s``, ``d_t``), grow the few target
vectors with **MemMixup** (each target vector mixed with its ``K`` nearest source vectors,
``lambda t + (1 - lambda) s``, ``lambda = 0.9``) and normalise the two distances per
domain before keeping the smaller. Their DCASE 2025 system (development set 64.53 against
the baseline's 56.26, frozen encoders only) normalises with training data only:

* **domain-wise z-score** (their eq. 3): ``min_d (d_d(y) - mu_d) / sigma_t``, where
  ``mu_d`` is the mean in-domain k-NN distance of domain ``d``'s own training vectors and
  ``sigma_t`` the target domain's standard deviation of those distances (``K = 1``);
* **local density** (eq. 4, after Wilkinghoff et al., ICASSP 2025):
  ``min_f d(y, f) / sum_{k<=K} d(f, f_k)`` over the bank vectors ``f``, ``f_k`` the ``K``
  nearest bank neighbours of ``f`` (``K = 16``);
* **domain-wise local density** (eq. 5): the same per domain bank, ``K_s = 16`` and
  ``K_t = 9``, the smaller of the two.

Here the training statistics are computed out of fold: a training vector's in-domain
distances, and a bank vector's neighbours, never include vectors of its own clip (nor
the MemMixup vectors made from it). ``n_centroids`` summarises a large bank by
MiniBatchKMeans centres (then a vector's distances to the centres are used as they are).
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.index import _NUMPY_CELLS, nearest, unit_rows
from soundwatch.detectors.scorers.knn import BankScorer, split_banks
from soundwatch.errors import DetectorError

__all__ = ["DomainDensityScorer", "DomainKNNScorer", "density_radius", "memmixup",
           "min_ratio", "out_of_fold_distances"]

log = logging.getLogger(__name__)

_EPS = 1e-12
_MAX_MIXED = 2_000_000
"""Most MemMixup vectors a scorer makes (beyond: an error asking for a smaller ``memmixup``)."""
_OOF_CHUNK = 4096
_STAT_ROWS = 20_000
"""Training rows per domain whose out-of-fold distances give ``knn_domain``'s statistics."""


def memmixup(source: np.ndarray, target: np.ndarray, groups: np.ndarray, n_mix: int | None,
             lam: float, metric: str, index: str = "flat", seed: int = 0,
             ) -> tuple[np.ndarray, np.ndarray]:
    """GenRep's MemMixup: the target bank plus each target vector mixed with its sources.

    Every target vector ``t`` gives ``lam * t + (1 - lam) * s`` for each of its ``n_mix``
    nearest source vectors ``s`` (unit length again for cosine). The originals come first.

    Args:
        source: ``[m_s, d]`` source bank.
        target: ``[m_t, d]`` target bank.
        groups: ``[m_t]`` clip index of each target vector; each mixed vector gets its
            target vector's.
        n_mix: Source neighbours per target vector (``None`` or 0: no MemMixup).
        lam: Weight of the target vector (GenRep: 0.9).
        metric: ``"cosine"`` or ``"euclidean"``.
        index: Search index (:func:`~soundwatch.detectors.scorers.index.nearest`).
        seed: Seed of an IVF index.

    Returns:
        ``(bank, groups)`` of the grown target bank.

    Raises:
        DetectorError: More than 2 million mixed vectors would be made.
    """
    if not n_mix or len(source) == 0 or len(target) == 0:
        return target, groups
    k = min(int(n_mix), len(source))
    if len(target) * k > _MAX_MIXED:
        raise DetectorError("scorer memmixup", f"{len(target)} target vectors x {k} source "
                            f"neighbours is more than {_MAX_MIXED} vectors: lower memmixup or "
                            "pool the items (MemMixup is meant for clip embeddings)")
    _, idx = nearest(target, source, k, metric, index=index, seed=seed)
    t = np.asarray(target, dtype=np.float64)
    mixed = lam * t[:, None, :] + (1.0 - lam) * np.asarray(source, dtype=np.float64)[idx]
    mixed = mixed.reshape(-1, target.shape[1])
    if metric == "cosine":
        mixed = unit_rows(mixed)
    bank = np.concatenate([t, mixed]).astype(target.dtype, copy=False)
    return bank, np.concatenate([groups, np.repeat(groups, k)])


def out_of_fold_distances(queries: np.ndarray, query_groups: np.ndarray | None,
                          bank: np.ndarray, bank_groups: np.ndarray | None, k: int, metric: str,
                          index: str = "flat", seed: int = 0) -> np.ndarray:
    """Distances ``[n, k']`` of each query to its ``k`` nearest bank rows of *other* groups.

    A row whose group (clip) equals the query's is skipped, so a training vector is never
    compared with itself or its clip's other frames. Without groups (``None``) every bank
    row counts. ``k' = min(k, rows available)``; a query without any row of another group
    gets ``inf``.
    """
    if bank_groups is None or query_groups is None:
        k = max(1, min(int(k), len(bank)))
        return nearest(queries, bank, k, metric, index=index, seed=seed)[0]
    largest = int(np.bincount(bank_groups).max()) if len(bank_groups) else 0
    k = max(1, min(int(k), len(bank) - 1)) if len(bank) > 1 else 1
    reach = min(len(bank), k + largest)
    out = np.full((len(queries), k), np.inf)
    for start in range(0, len(queries), _OOF_CHUNK):
        q = queries[start : start + _OOF_CHUNK]
        dist, idx = nearest(q, bank, reach, metric, index=index, seed=seed)
        dist[bank_groups[idx] == query_groups[start : start + len(q), None]] = np.inf
        dist.sort(axis=1)
        width = min(k, dist.shape[1])
        out[start : start + len(q), :width] = dist[:, :width]
    return out


def density_radius(bank: np.ndarray, groups: np.ndarray | None, k: int, metric: str,
                   index: str = "flat", seed: int = 0) -> np.ndarray:
    """Each bank row's local density radius: the *sum* of its ``k`` out-of-fold distances.

    Rows without a neighbour of another clip fall back to their nearest other rows; a
    bank of one row gets radius 1 (no normalisation). Radii are floored at 1e-3 x their
    median (and 1e-12), so duplicate rows cannot divide by zero.
    """
    if len(bank) < 2:
        return np.ones(len(bank))
    dist = out_of_fold_distances(bank, groups, bank, groups, k, metric, index, seed)
    lonely = ~np.isfinite(dist).all(axis=1)
    if lonely.any():  # one clip in the bank: its rows' neighbours from the same clip
        own = np.arange(len(bank))
        dist[lonely] = out_of_fold_distances(bank[lonely], own[lonely], bank, own,
                                             dist.shape[1], metric, index, seed)
    radius = dist.sum(axis=1)
    floor = max(_EPS, 1e-3 * float(np.median(radius)))
    return np.maximum(radius, floor)


def _pairwise(q: np.ndarray, bank: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1.0 - unit_rows(q) @ bank.T
    sq = (q**2).sum(axis=1)[:, None] + (bank**2).sum(axis=1)[None, :] - 2.0 * q @ bank.T
    return np.sqrt(np.maximum(sq, 0.0))


def min_ratio(queries: np.ndarray, bank: np.ndarray, radius: np.ndarray, metric: str,
              candidates: int | None = None, index: str = "flat", seed: int = 0) -> np.ndarray:
    """``min_f d(q, f) / radius_f`` over the bank rows ``f`` for each query (GenRep eq. 4).

    Exact over the whole bank (chunked) when ``candidates`` is ``None``; otherwise over
    each query's ``candidates`` nearest rows only (approximate, for frame-level banks).
    """
    if candidates is not None:
        dist, idx = nearest(queries, bank, int(candidates), metric, index=index, seed=seed)
        return (dist / radius[idx]).min(axis=1)
    bank = np.asarray(bank, dtype=np.float64)
    out = np.empty(len(queries))
    chunk = max(1, min(2048, _NUMPY_CELLS // max(1, len(bank))))
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start : start + chunk], dtype=np.float64)
        out[start : start + len(q)] = (_pairwise(q, bank, metric) / radius[None, :]).min(axis=1)
    return out


class _GenRepBank(BankScorer):
    """Per-domain banks with MemMixup and k-means compression (shared by the two scorers)."""

    requires: ClassVar[str] = "vectors"
    domain_wise: bool

    def validate(self) -> None:  # noqa: D102
        super().validate()
        if self.memmixup is not None:
            self._check_int("memmixup", low=0)
        self._check_number("mixup_lambda", 0.0, 1.0)

    def _banks(self, x: np.ndarray, domains: np.ndarray, clips: np.ndarray
               ) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """``{domain: (bank, groups)}`` of prepared rows, after MemMixup and compression.

        A compressed bank's groups are ``None``.
        """
        is_target = domains == "target"
        source, target = split_banks(x, is_target)
        g_source, g_target = split_banks(clips, is_target)
        target, g_target = memmixup(source, target, g_target, self.memmixup, self.mixup_lambda,
                                    self.metric, self._index(), self.seed)
        if len(target) > int(is_target.sum()):
            log.info("%s: MemMixup grew %d target vectors to %d", self.name,
                     int(is_target.sum()), len(target))
        if not self.domain_wise:
            source = np.concatenate([source, target]) if len(target) else source
            g_source = np.concatenate([g_source, g_target]) if len(target) else g_source
            target, g_target = x[:0], clips[:0]
        out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for which, bank, groups in (("source", source, g_source), ("target", target, g_target)):
            small = self._compressed(bank)
            out[which] = (small, groups if small is bank else None)
        return out

    def _extra_state(self) -> tuple[str, ...]:
        return ("norm",)


@register_scorer("knn_domain")
class DomainKNNScorer(_GenRepBank):
    """GenRep's per-domain k-NN with domain-wise z-score normalisation (out of fold).

    Source and target training vectors form two banks (1-NN each by default). A vector's
    distance to each bank is normalised by that domain's own training statistics: the
    mean ``mu_d`` of its training vectors' out-of-fold k-NN distances (to the same bank,
    other clips only) and a standard deviation; the score is the smaller normalised
    distance. ``normalise="zscore"`` is GenRep's ``(d_d - mu_d) / sigma`` (DCASE 2025,
    eq. 3: ``sigma`` of the target domain for both, ``scale="target"``; ``"own"``: each
    domain's own); ``"mean"`` divides by ``mu_d``; ``"none"`` keeps the raw distances
    (plain domain-aware k-NN). With few target clips ``memmixup`` grows the target bank.

    Args:
        n_neighbors: ``k`` of the distances (GenRep: 1).
        normalise: ``"zscore"``, ``"mean"`` or ``"none"``.
        scale: ``"target"`` (GenRep) or ``"own"``: whose standard deviation divides.
        metric: ``"euclidean"`` (GenRep) or ``"cosine"``.
        memmixup: MemMixup source neighbours per target vector (``None``: off; GenRep
            used up to all 990 source clips).
        mixup_lambda: Weight of the target vector in a mix (GenRep: 0.9).
        n_centroids: Summarise each bank larger than this by MiniBatchKMeans centres.
        standardize: Standardise each dimension with the training mean and std first.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item scores (one item when pooled).
        max_rows: Most training vectors kept (a random subset beyond; ``None``: all).
        index: ``"flat"`` (exact), ``"ivf"`` or ``"auto"`` (IVF beyond 2 million vectors).
        seed: Seed of the subset, k-means and an IVF index.
    """

    domain_wise = True

    def __init__(self, *, n_neighbors: int = 1, normalise: str = "zscore",
                 scale: str = "target", metric: str = "euclidean", memmixup: int | None = None,
                 mixup_lambda: float = 0.9, n_centroids: int | None = None,
                 standardize: bool = False, aggregate: str = "mean",
                 max_rows: int | None = None, index: str = "auto", seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_choice("normalise", ("zscore", "mean", "none"))
        self._check_choice("scale", ("target", "own"))

    def _fit_clip_rows(self, x: np.ndarray, domains: np.ndarray, clips: np.ndarray) -> None:
        xp = self._prepared(x)
        banks = self._banks(xp, domains, clips)
        is_target = domains == "target"
        stats = np.full((2, 3), np.nan)  # rows source, target; columns mu, sd, n
        for row, which in enumerate(("source", "target")):
            bank, groups = banks[which]
            setattr(self, f"bank_{which}_", bank)
            mine = np.flatnonzero(is_target if which == "target" else ~is_target)
            if not len(bank) or not len(mine):
                continue
            if len(mine) > _STAT_ROWS:  # frame banks: the statistics of a seeded sample
                rng = np.random.default_rng(self.seed)
                mine = np.sort(rng.choice(mine, _STAT_ROWS, replace=False))
            dist = out_of_fold_distances(xp[mine], clips[mine] if groups is not None else None,
                                         bank, groups, self.n_neighbors, self.metric,
                                         self._index(), self.seed).mean(axis=1)
            dist = dist[np.isfinite(dist)]
            if len(dist) == 0:
                log.warning("%s: the %s domain has one clip; its distances are not normalised",
                            self.name, which)
                continue
            stats[row] = dist.mean(), dist.std(), len(dist)
        self.norm_ = stats

    def _bank_scores(self, x: np.ndarray, which: str, bank: np.ndarray) -> np.ndarray:
        d = super()._bank_scores(x, which, bank)
        if self.normalise == "none":
            return d
        row = 0 if which == "source" else 1
        mu, sd, n = self.norm_[row]
        if not np.isfinite(mu):  # a domain without statistics: the other's (or none)
            mu, sd, n = self.norm_[1 - row]
            if not np.isfinite(mu):
                return d
        if self.normalise == "mean":
            return d / max(mu, _EPS)
        if self.scale == "target" and self.norm_[1, 2] >= 2 and self.norm_[1, 1] > _EPS:
            sd = self.norm_[1, 1]
        elif not (n >= 2 and sd > _EPS):
            sd = max(float(np.nanmax(self.norm_[:, 1])), _EPS) if np.isfinite(
                self.norm_[:, 1]).any() else 1.0
        return (d - mu) / max(sd, _EPS)


@register_scorer("knn_density")
class DomainDensityScorer(_GenRepBank):
    """GenRep's local-density normalised nearest neighbour, domain-wise (out of fold).

    A vector's score against a bank is ``min_f d(y, f) / r_f`` over the bank vectors
    ``f``, where ``r_f`` is the sum of ``f``'s distances to its ``K`` nearest bank
    neighbours of other clips (GenRep DCASE 2025, eqs. 4-5, after Wilkinghoff et al.,
    ICASSP 2025): a distance is judged against how spread out the normal vectors are
    around the one it is compared with. ``domain_wise`` (eq. 5) keeps a source bank
    (``K = density_neighbors``) and a target bank (``K = density_neighbors_target``) and
    the smaller score; otherwise one bank of all vectors (eq. 4).

    Args:
        density_neighbors: ``K`` of the (source) bank's radii (GenRep: 16).
        density_neighbors_target: ``K`` of the target bank's radii (GenRep: 9).
        domain_wise: Separate source and target banks (eq. 5) or one bank (eq. 4).
        candidates: ``None``: the minimum over the whole bank (exact); a number: over a
            query's nearest bank vectors only (faster for frame-level banks).
        metric: ``"euclidean"`` (GenRep) or ``"cosine"``.
        memmixup: MemMixup source neighbours per target vector (``None``: off).
        mixup_lambda: Weight of the target vector in a mix (GenRep: 0.9).
        n_centroids: Summarise each bank larger than this by MiniBatchKMeans centres.
        standardize: Standardise each dimension with the training mean and std first.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item scores (one item when pooled).
        max_rows: Most training vectors kept (a random subset beyond; ``None``: all).
        index: ``"flat"`` (exact), ``"ivf"`` or ``"auto"`` (IVF beyond 2 million vectors).
        seed: Seed of the subset, k-means and an IVF index.
    """

    n_neighbors = 1

    def __init__(self, *, density_neighbors: int = 16, density_neighbors_target: int = 9,
                 domain_wise: bool = True, candidates: int | None = None,
                 metric: str = "euclidean", memmixup: int | None = None,
                 mixup_lambda: float = 0.9, n_centroids: int | None = None,
                 standardize: bool = False, aggregate: str = "mean",
                 max_rows: int | None = None, index: str = "auto", seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_int("density_neighbors")
        self._check_int("density_neighbors_target")
        if self.candidates is not None:
            self._check_int("candidates")

    def _fit_clip_rows(self, x: np.ndarray, domains: np.ndarray, clips: np.ndarray) -> None:
        banks = self._banks(self._prepared(x), domains, clips)
        for which, k in (("source", self.density_neighbors),
                         ("target", self.density_neighbors_target)):
            bank, groups = banks[which]
            setattr(self, f"bank_{which}_", bank)
            setattr(self, f"radius_{which}_", density_radius(bank, groups, k, self.metric,
                                                             self._index(), self.seed))

    def _bank_scores(self, x: np.ndarray, which: str, bank: np.ndarray) -> np.ndarray:
        return min_ratio(x, bank, getattr(self, f"radius_{which}_"), self.metric,
                         self.candidates, self._index(), self.seed)

    def _extra_state(self) -> tuple[str, ...]:
        return ("radius_source", "radius_target")
