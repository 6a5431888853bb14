"""Scorers with nothing to learn: a classifier's probability, reconstruction MSE, a VAE's ELBO."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from soundwatch.detectors.scorers import register_scorer
from soundwatch.detectors.scorers.base import AGGREGATES, Scorer, as_rows

__all__ = ["ELBOScorer", "MSEScorer", "ProbabilityScorer"]


class _MeanOfView(Scorer):
    """Score = mean (or max) over a clip's items of one value per item."""

    needs_fit: ClassVar[bool] = False

    def __init__(self, *, aggregate: str = "mean") -> None:
        self.aggregate = aggregate

    def validate(self) -> None:  # noqa: D102
        self._check_choice("aggregate", AGGREGATES)

    def _per_item(self, rows: np.ndarray) -> np.ndarray:
        return rows.mean(axis=1)

    def score(self, items: Sequence[np.ndarray]) -> np.ndarray:  # noqa: D102
        out = np.full(len(items), np.nan)
        for i, item in enumerate(items):
            rows = as_rows(item)
            if rows.size:
                values = self._per_item(rows)
                out[i] = values.max() if self.aggregate == "max" else values.mean()
        return out


@register_scorer("probability")
class ProbabilityScorer(_MeanOfView):
    """Mean over a clip's windows of a classifier's anomaly probability.

    Args:
        aggregate: ``"mean"`` or ``"max"`` over the clip's windows.
    """

    requires: ClassVar[str] = "probability"


@register_scorer("mse")
class MSEScorer(_MeanOfView):
    """Mean squared reconstruction error over a clip's vectors (or windows) and dimensions.

    Args:
        aggregate: ``"mean"`` or ``"max"`` over the clip's vectors of their mean squared error.
    """

    requires: ClassVar[str] = "residual"

    def _per_item(self, rows: np.ndarray) -> np.ndarray:
        return (rows**2).mean(axis=1)


@register_scorer("elbo")
class ELBOScorer(_MeanOfView):
    """Negative ELBO of a variational autoencoder, averaged over a clip's windows.

    Args:
        aggregate: ``"mean"`` or ``"max"`` over the clip's windows.
    """

    requires: ClassVar[str] = "elbo"
