"""Mahalanobis scorers: Ledoit-Wolf shrunk on vectors, and selective Mahalanobis on residuals."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.base import RowScorer, Scorer, as_rows
from soundwatch.errors import DetectorError

if TYPE_CHECKING:
    from typing import Self

__all__ = ["MahalanobisScorer", "SelectiveMahalanobisScorer", "shrunk_precision"]

log = logging.getLogger(__name__)

DOMAINS = ("source", "target")


def shrunk_precision(
    x: np.ndarray, *, centered: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, precision matrix and shrinkage of ``x`` with the Ledoit-Wolf estimator.

    Ledoit-Wolf shrinks the sample covariance towards a scaled identity by the amount
    that minimises the expected error, so the precision exists even with fewer samples
    than dimensions (a single sample gives the identity scaled by its variance).

    Args:
        x: Samples ``[n, d]``.
        centered: Treat the data as zero-mean (the mean returned is then zeros).
    """
    from sklearn.covariance import LedoitWolf

    x = as_rows(x)
    if len(x) < 2:
        mean = x.mean(axis=0) if not centered else np.zeros(x.shape[1])
        var = float(np.mean((x - mean) ** 2)) if len(x) else 1.0
        return mean, np.eye(x.shape[1]) / max(var, 1e-12), 1.0
    lw = LedoitWolf(assume_centered=centered).fit(x)
    precision = np.asarray(lw.precision_, dtype=np.float64)
    return np.asarray(lw.location_, dtype=np.float64), precision, float(lw.shrinkage_)


def _quadratic(d: np.ndarray, precision: np.ndarray) -> np.ndarray:
    return np.maximum(np.einsum("nd,de,ne->n", d, precision, d), 0.0)


@register_scorer("mahalanobis")
class MahalanobisScorer(RowScorer):
    """Mahalanobis distance to the training vectors (Ledoit-Wolf shrunk covariance).

    Args:
        standardize: Standardise each dimension with the training mean and std first.
        squared: Return squared distances.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item scores (one item when pooled).
        max_rows: Most training vectors used (a random subset beyond).
        seed: Seed of that subset.
    """

    def __init__(self, *, standardize: bool = True, squared: bool = False,
                 aggregate: str = "mean", max_rows: int = 20000, seed: int = 0) -> None:
        self._store(locals())

    def _fit_rows(self, x: np.ndarray, domains: np.ndarray) -> None:
        self.location_, self.precision_, self.shrinkage_ = shrunk_precision(x)

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        sq = _quadratic(x - self.location_, self.precision_)
        return sq if self.squared else np.sqrt(sq)

    def _state_rows(self) -> dict[str, np.ndarray]:
        return {"location": self.location_, "precision": self.precision_,
                "shrinkage": np.array(self.shrinkage_)}

    def _load_rows(self, arrays: dict[str, np.ndarray]) -> None:
        self.location_, self.precision_ = arrays["location"], arrays["precision"]
        self.shrinkage_ = float(arrays["shrinkage"])


@register_scorer("selective_mahalanobis")
class SelectiveMahalanobisScorer(Scorer):
    """Selective Mahalanobis on reconstruction residuals (DCASE 2023/2024 AE baseline score).

    The covariance of the residual vectors is estimated separately on the source and on
    the target training clips; a clip's score is the smaller of its two distances (a
    domain without training clips uses the other's covariance). Variants:

    * ``"shrunk"`` (soundwatch's): Ledoit-Wolf shrunk covariance of the whole residual
      vectors (e.g. 640 = 5 frames x 128 mels, at most ``max_rows`` of them, drawn with
      ``seed``); score ``min_d  r^T P_d r`` with ``r`` the clip's mean residual vector.
    * ``"baseline"`` (the official nttcslab baseline's computation): each residual vector
      is cut into blocks of ``block_size`` values (one frame of 128 mel bins), the
      empirical covariance of those blocks (centred, divided by their number) is
      inverted as it is; score ``min_d  n * b^T P_d b`` with ``b`` the mean block of the
      clip and ``n`` its number of blocks (the baseline's ``sum(D P D^T) / n``).

    Args:
        variant: ``"shrunk"`` or ``"baseline"``.
        block_size: Values per block of the baseline variant (a composed detector sets it
            to its front-end's mel bins unless given).
        max_rows: Most residual vectors per domain for the shrunk covariance.
        seed: Seed of that subset.
    """

    requires: ClassVar[str] = "residual"

    def __init__(self, *, variant: str = "shrunk", block_size: int = 128,
                 max_rows: int = 20000, seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        self._check_choice("variant", ("shrunk", "baseline"))
        self._check_int("block_size")
        self._check_int("max_rows")

    def _blocks(self, rows: np.ndarray) -> np.ndarray:
        if self.variant == "shrunk":
            return rows
        if rows.shape[1] % self.block_size:
            raise DetectorError(self._where("block_size"), f"residual vectors of "
                                f"{rows.shape[1]} values do not split into blocks of "
                                f"{self.block_size}")
        return rows.reshape(-1, self.block_size)

    def fit(self, items: Sequence[np.ndarray], domains: Sequence[str | None]) -> Self:  # noqa: D102
        self.validate()
        rng = np.random.default_rng(self.seed)
        precisions: dict[str, np.ndarray] = {}
        for domain in DOMAINS:
            group = [self._blocks(as_rows(it)) for it, d in zip(items, domains, strict=True)
                     if (d == "target") == (domain == "target")]
            if not group:
                continue
            if self.variant == "shrunk":
                x = np.concatenate(group)
                if len(x) > self.max_rows:
                    x = x[np.sort(rng.choice(len(x), self.max_rows, replace=False))]
                _, precisions[domain], _ = shrunk_precision(x)
            else:  # accumulated sums: no need to hold every block in memory
                n = sum(len(g) for g in group)
                total = sum(g.sum(axis=0) for g in group)
                outer = sum(g.T @ g for g in group)
                mean = total / n
                cov = outer / n - np.outer(mean, mean)
                try:
                    precisions[domain] = np.linalg.inv(cov)
                except np.linalg.LinAlgError:
                    log.warning("%s residual covariance is singular; using its pseudo-inverse",
                                domain)
                    precisions[domain] = np.linalg.pinv(cov)
        if not precisions:
            raise DetectorError(f"scorer {self.name}", "no training residuals")
        for domain, other in (("source", "target"), ("target", "source")):
            if domain not in precisions:
                log.info("no %s-domain training clips: using the %s covariance", domain, other)
                precisions[domain] = precisions[other]
        self.precision_source_ = precisions["source"]
        self.precision_target_ = precisions["target"]
        return self

    def score(self, items: Sequence[np.ndarray]) -> np.ndarray:  # noqa: D102
        out = np.full(len(items), np.nan)
        for i, item in enumerate(items):
            blocks = self._blocks(as_rows(item))
            if not len(blocks):
                continue
            r = blocks.mean(axis=0)
            scale = float(len(blocks)) if self.variant == "baseline" else 1.0
            out[i] = scale * min(float(r @ self.precision_source_ @ r),
                                 float(r @ self.precision_target_ @ r))
        return out

    def state(self) -> dict[str, np.ndarray]:  # noqa: D102
        return {"precision_source": self.precision_source_,
                "precision_target": self.precision_target_}

    def load_state(self, arrays: dict[str, np.ndarray]) -> Self:  # noqa: D102
        self.precision_source_ = arrays["precision_source"]
        self.precision_target_ = arrays["precision_target"]
        return self
