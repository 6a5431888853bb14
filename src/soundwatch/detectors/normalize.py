"""Ensemble arithmetic, numpy only: a member's scores against its training scores, combined.

The library's :class:`~soundwatch.detectors.ensemble.EnsembleDetector` and the torch-free
:mod:`soundwatch.runtime` both use these functions, so an export combines as the library does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from soundwatch.decisions import percentile_of
from soundwatch.errors import DetectorError

__all__ = ["COMBINES", "NORMALIZATIONS", "combine_scores", "normalize_scores"]

NORMALIZATIONS = ("zscore", "robust", "logz", "logrobust", "percentile")
"""How an ensemble member's scores are expressed against its out-of-fold training scores."""


def normalize_scores(scores: np.ndarray | Sequence[float], train_scores: np.ndarray,
                     how: str = "zscore") -> np.ndarray:
    """Scores expressed against a detector's (out-of-fold) training scores.

    Args:
        scores: Raw scores.
        train_scores: The normal training clips' scores.
        how: ``"zscore"``: ``(score - mean) / std`` of the training scores (std floored);
            ``"robust"``: ``(score - median) / (1.4826 MAD)``, the scale floored at half the
            standard deviation so that a few identical training scores cannot blow it up;
            ``"logz"`` / ``"logrobust"``: the same on the logarithm of the scores when every
            training score is positive (distances: a ratio scale, where a clip twice as far
            counts the same at any level), else on the scores themselves;
            ``"percentile"``: 0-100, the share of training scores at or below.

    Returns:
        float64 normalised scores (higher = more anomalous, as the raw ones).
    """
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    ref = np.asarray(train_scores, dtype=np.float64).reshape(-1)
    ref = ref[np.isfinite(ref)]
    if how == "percentile":
        return percentile_of(ref, x)
    if how not in NORMALIZATIONS:
        raise DetectorError("normalize", f"{how!r} is not one of {', '.join(NORMALIZATIONS)}")
    if ref.size == 0:
        return np.full(x.shape, np.nan)
    if how.startswith("log"):
        how = how[3:] if how == "logrobust" else "zscore"
        if float(ref.min()) > 0:
            floor = float(ref.min()) * 1e-3  # a test score at or below 0 counts as very close
            x, ref = np.log(np.maximum(x, floor)), np.log(ref)
    std = float(ref.std())
    if how == "robust":
        center = float(np.median(ref))
        spread = max(1.4826 * float(np.median(np.abs(ref - center))), 0.5 * std)
    else:
        center, spread = float(ref.mean()), std
    scale = spread if spread > 1e-12 else max(abs(center), 1.0) * 1e-6
    return (x - center) / scale


COMBINES = ("mean", "max", "fisher")


def combine_scores(normed: Sequence[np.ndarray], combine: str = "mean",
                   weights: Sequence[float] | None = None) -> np.ndarray:
    """One score per clip from several members' normalised scores.

    Args:
        normed: One array per member, each normalised against that member's out-of-fold
            training scores (:func:`normalize_scores`).
        combine: ``"mean"`` (weighted), ``"max"``, or ``"fisher"``: the (weighted) sum of
            ``-log P(Z > z)`` under a standard normal, Fisher's combination of one-sided
            tail probabilities; it follows the most deviant member like ``max`` while
            still adding up moderate deviations of several members. For percentile
            inputs use ``mean`` or ``max``.
        weights: One non-negative weight per member (``None``: equal).

    Returns:
        float64 combined scores (higher = more anomalous).
    """
    stack = np.vstack([np.asarray(n, dtype=np.float64).reshape(-1) for n in normed])
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if combine == "max":
        return stack.max(axis=0)
    if combine == "fisher":
        from scipy.special import log_ndtr

        return (w[:, None] * -log_ndtr(-stack)).sum(axis=0) / w.sum()
    if combine != "mean":
        raise DetectorError("combine", f"{combine!r} is not one of {', '.join(COMBINES)}")
    return (w[:, None] * stack).sum(axis=0) / w.sum()
