"""k-NN on a target bank balanced with SMOTE: few target clips grown by interpolation."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.knn import BankScorer
from soundwatch.errors import DetectorError

__all__ = ["SMOTEKNNScorer", "smote_oversample"]

log = logging.getLogger(__name__)

_EPS = 1e-12


def smote_oversample(majority: np.ndarray, minority: np.ndarray, n_total: int,
                     k_neighbors: int = 5, seed: int = 0) -> np.ndarray:
    """Grow ``minority`` to ``n_total`` rows with SMOTE (imbalanced-learn).

    Each new row lies on the segment between a minority row and one of its
    ``k_neighbors`` nearest minority rows (Chawla et al., 2002). ``majority`` only sets the
    two-class problem imbalanced-learn expects; its rows are not changed or returned.

    Args:
        majority: ``[n_major, d]`` rows of the other class (source).
        minority: ``[n_minor, d]`` rows to grow (target), at least 2.
        n_total: Minority rows wanted in the output (originals included).
        k_neighbors: SMOTE neighbours, capped at ``n_minor - 1``.
        seed: Random state.

    Returns:
        ``[max(n_total, n_minor), d]``: the original minority rows, then the synthetic ones.

    Raises:
        DetectorError: imbalanced-learn is not installed.
    """
    n_minor = len(minority)
    if n_total <= n_minor or n_minor < 2:
        return minority
    try:
        from imblearn.over_sampling import SMOTE
    except ImportError as exc:
        raise DetectorError("scorer knn_smote", "imbalanced-learn is not installed: "
                            "pip install imbalanced-learn") from exc
    x = np.concatenate([majority, minority])
    y = np.r_[np.zeros(len(majority), int), np.ones(n_minor, int)]
    if len(majority) == 0:  # imbalanced-learn needs two classes: a placeholder majority row
        x = np.concatenate([minority[:1], x])
        y = np.r_[0, y]
    smote = SMOTE(sampling_strategy={1: int(n_total)}, k_neighbors=min(int(k_neighbors),
                  n_minor - 1), random_state=int(seed))
    x_res, y_res = smote.fit_resample(x, y)
    # imbalanced-learn returns the input rows in order, then the synthetic rows
    synthetic = x_res[len(x):][y_res[len(x):] == 1]
    return np.concatenate([minority, synthetic])


@register_scorer("knn_smote")
class SMOTEKNNScorer(BankScorer):
    """k-NN whose few target-domain training vectors are grown with SMOTE to balance the bank.

    DCASE 2023-2025 development sets give about 10 target clips for 990 source clips per
    section, so a target clip's nearest neighbour is rarely found. The target vectors
    are oversampled with SMOTE (interpolation between target neighbours) to
    ``target_ratio`` x the number of source vectors; then either one k-NN bank holds
    source + grown target (default) or, with ``domain_aware``, the two banks are scored
    separately and the smaller distance kept. With fewer than two target vectors nothing
    is grown (plain k-NN).

    Args:
        n_neighbors: ``k`` of the anomaly score (mean distance to the ``k`` nearest).
        smote_neighbors: Target neighbours a synthetic vector may be drawn towards.
        target_ratio: Target bank size after oversampling, as a fraction of the source
            bank (never shrunk below the real target vectors).
        metric: ``"cosine"`` (1 - cosine similarity; SMOTE on unit vectors, synthetic
            ones re-normalised) or ``"euclidean"``.
        domain_aware: Separate source and (grown) target banks, smaller distance kept.
        standardize: Standardise each dimension with the training mean and std first.
        aggregate: ``"mean"`` or ``"max"`` of a clip's item distances (one item when pooled).
        max_rows: Most training vectors kept (a random subset beyond; ``None``: all).
        index: ``"flat"`` (exact faiss search), ``"ivf"`` or ``"auto"`` (IVF beyond 2
            million vectors).
        seed: Seed of that subset and of SMOTE.
    """

    requires: ClassVar[str] = "vectors"

    def __init__(self, *, n_neighbors: int = 1, smote_neighbors: int = 5,
                 target_ratio: float = 1.0, metric: str = "cosine", domain_aware: bool = False,
                 standardize: bool = False, aggregate: str = "mean", max_rows: int | None = None,
                 index: str = "auto", seed: int = 0) -> None:
        self._store(locals())

    def validate(self) -> None:  # noqa: D102
        super().validate()
        self._check_int("smote_neighbors")
        self._check_number("target_ratio", 0.0, low_open=True)

    def _fit_rows(self, x: np.ndarray, domains: np.ndarray) -> None:
        x = self._prepared(x)
        is_target = domains == "target"
        source, target = x[~is_target], x[is_target]
        wanted = int(round(self.target_ratio * len(source)))
        if len(target) >= 2 and wanted > len(target):
            grown = smote_oversample(source, target, wanted, self.smote_neighbors, self.seed)
            grown = self._prepared(grown)
            log.info("knn_smote: %d target vectors grown to %d", len(target), len(grown))
            target = grown
        elif len(target) == 1:
            log.info("knn_smote: one target vector, nothing to interpolate")
        self.n_synthetic_ = np.array(len(target) - int(is_target.sum()))
        if self.domain_aware:
            self.bank_source_, self.bank_target_ = source, target
        else:
            self.bank_source_ = np.concatenate([source, target])
            self.bank_target_ = np.zeros((0, x.shape[1]))

    def _extra_state(self) -> tuple[str, ...]:
        return ("n_synthetic",)
