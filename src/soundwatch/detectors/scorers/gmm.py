"""Gaussian-mixture scorer: negative log-likelihood (fitted by scikit-learn, scored in numpy)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.base import RowScorer

__all__ = ["GMMScorer"]

_ARRAYS = ("weights", "means", "precisions_cholesky")


@register_scorer("gmm")
class GMMScorer(RowScorer):
    """Negative log-likelihood under a Gaussian mixture (scikit-learn GaussianMixture).

    Args:
        n_components: Mixture components (capped at the number of training vectors).
        covariance_type: ``"full"``, ``"diag"``, ``"tied"`` or ``"spherical"``.
        reg_covar: Added to the covariance diagonals.
        standardize: Standardise each dimension with the training mean and std first.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item scores (one item when pooled).
        max_rows: Most training vectors used (a random subset beyond).
        seed: Seed of that subset and of the mixture initialisation.
    """

    requires: ClassVar[str] = "vectors"

    def __init__(self, *, n_components: int = 2, covariance_type: str = "diag",
                 reg_covar: float = 1e-3, standardize: bool = True, aggregate: str = "mean",
                 max_rows: int = 20000, seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_int("n_components")
        self._check_choice("covariance_type", ("full", "diag", "tied", "spherical"))
        if not isinstance(self.reg_covar, int | float) or not self.reg_covar > 0:
            from soundwatch.errors import DetectorError

            raise DetectorError(self._where("reg_covar"), "must be a positive number")

    def _fit_rows(self, x: np.ndarray, domains: np.ndarray) -> None:
        from sklearn.mixture import GaussianMixture

        model = GaussianMixture(
            n_components=max(1, min(int(self.n_components), len(x))),
            covariance_type=self.covariance_type, reg_covar=float(self.reg_covar),
            random_state=self.seed, max_iter=200,
        ).fit(x)
        self.weights_ = model.weights_
        self.means_ = model.means_
        self.precisions_cholesky_ = model.precisions_cholesky_

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        # scikit-learn's log-density, written with numpy so that scoring needs no sklearn
        n, d = x.shape
        chol, means, kind = self.precisions_cholesky_, self.means_, self.covariance_type
        if kind == "full":
            log_det = np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
            maha = np.stack([
                np.sum(np.square(x @ c - m @ c), axis=1) for m, c in zip(means, chol, strict=True)
            ], axis=1)
        elif kind == "tied":
            log_det = np.full(len(means), np.sum(np.log(np.diag(chol))))
            maha = np.stack([np.sum(np.square(x @ chol - m @ chol), axis=1) for m in means],
                            axis=1)
        elif kind == "diag":
            log_det = np.sum(np.log(chol), axis=1)
            prec = chol**2
            maha = (np.sum(means**2 * prec, 1) - 2.0 * x @ (means * prec).T
                    + (x**2) @ prec.T)
        else:  # spherical
            log_det = d * np.log(chol)
            prec = chol**2
            maha = (np.sum(means**2, 1) * prec - 2 * x @ means.T * prec
                    + np.outer((x**2).sum(axis=1), prec))
        log_prob = -0.5 * (d * np.log(2 * np.pi) + maha) + log_det + np.log(self.weights_)
        top = log_prob.max(axis=1, keepdims=True)
        log_lik = (top + np.log(np.exp(log_prob - top).sum(axis=1, keepdims=True)))[:, 0]
        return -log_lik

    def _state_rows(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, f"{name}_") for name in _ARRAYS}

    def _load_rows(self, arrays: dict[str, np.ndarray]) -> None:
        for name in _ARRAYS:
            setattr(self, f"{name}_", arrays[name])
