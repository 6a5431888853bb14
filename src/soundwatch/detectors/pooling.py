"""Poolings: one clip's item vectors (frames, windows) ``[n, d]`` -> one clip vector (numpy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from soundwatch.errors import DetectorError
from soundwatch.registry import Registry

__all__ = ["POOLINGS", "list_poolings", "pool", "register_pooling"]

POOLINGS: Registry[Callable[..., np.ndarray]] = Registry(
    "pooling", modules=("soundwatch.detectors.pooling",), error=DetectorError
)
"""Registered poolings: ``fn(items [n, d], **params) -> [d']``; ``none`` keeps the items."""

register_pooling = POOLINGS.register


def list_poolings() -> list[str]:
    """Names of the registered poolings."""
    return POOLINGS.names()


def pool(name: str, items: np.ndarray, **params: Any) -> np.ndarray:
    """Pool one clip's items ``[n, d]`` to ``[1, d']`` (``"none"``: the items unchanged).

    Raises:
        DetectorError: Unknown pooling or parameter.
    """
    x = np.asarray(items, dtype=np.float64)
    x = x.reshape(1, -1) if x.ndim == 1 else x.reshape(len(x), -1)
    if name == "none":
        return x
    if len(x) == 0:
        return np.full((1, 0), np.nan)
    return np.asarray(POOLINGS.create(name, items=x, **params), dtype=np.float64).reshape(1, -1)


@register_pooling("none")
def none(items: np.ndarray) -> np.ndarray:
    """No pooling: every item (frame or window) is scored; the scorer aggregates per clip."""
    return items


@register_pooling("mean")
def mean(items: np.ndarray) -> np.ndarray:
    """Mean over items."""
    return items.mean(axis=0)


@register_pooling("meanstd")
def meanstd(items: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over items, concatenated (``2 d`` values)."""
    return np.concatenate([items.mean(axis=0), items.std(axis=0)])


@register_pooling("max")
def max_(items: np.ndarray) -> np.ndarray:
    """Largest value of each dimension over items."""
    return items.max(axis=0)


def _weighted_gem(items: np.ndarray, weights: np.ndarray, p: float, negatives: str) -> np.ndarray:
    """``(sum_t w_t f(x_t)^p)^(1/p)`` per dimension, ``sum_t w_t = 1``; ``f`` per ``negatives``."""
    if not np.isfinite(p) or p <= 0:
        raise DetectorError("pooling", f"GeM exponent p must be a positive number, got {p!r}")
    if negatives == "clamp":
        powered = np.maximum(items, 0.0) ** p
        return (weights @ powered) ** (1.0 / p)
    if negatives == "sign":
        m = weights @ (np.sign(items) * np.abs(items) ** p)
        return np.sign(m) * np.abs(m) ** (1.0 / p)
    raise DetectorError("pooling", f"negatives must be 'clamp' or 'sign', got {negatives!r}")


@register_pooling("gem")
def gem(items: np.ndarray, p: float = 3.0, negatives: str = "clamp") -> np.ndarray:
    """Generalised mean over items: ``(mean_t x_t^p)^(1/p)`` per dimension.

    ``p = 1`` is the mean (of the non-negative values with ``"clamp"``) and a large ``p``
    approaches the max. Negative values are handled by ``negatives``:

    - ``"clamp"`` (default, as in Radenovic et al. 2019 and Wilkinghoff et al. 2026): values
      below zero count as zero, so the output is non-negative (suits ReLU activations such
      as CREPE's; a dimension that is never positive pools to 0).
    - ``"sign"``: a signed power mean, ``sign(m) |m|^(1/p)`` with ``m = mean_t sign(x_t)
      |x_t|^p``; odd-symmetric (``gem(-x) = -gem(x)``), for features such as log-mel values.

    Args:
        items: ``[n, d]`` item vectors.
        p: Exponent, > 0.
        negatives: ``"clamp"`` or ``"sign"``.
    """
    weights = np.full(len(items), 1.0 / len(items))
    return _weighted_gem(items, weights, float(p), negatives)


def relative_deviation_weights(items: np.ndarray, gamma: float = 4.0) -> np.ndarray:
    """Relative-deviation pooling weights ``w [n]`` (non-negative, summing to one).

    ``d_t = ||x_t - mean_s x_s||_2``, ``r_t = d_t / max_s d_s`` (0 for all when the largest
    deviation is below 1e-12), ``a_t = (1 + r_t)^gamma``, ``w_t = a_t / sum_s a_s``.
    """
    if not np.isfinite(gamma) or gamma < 0:
        raise DetectorError("pooling", f"reldev gamma must be >= 0, got {gamma!r}")
    deviation = np.linalg.norm(items - items.mean(axis=0), axis=1)
    largest = deviation.max()
    relative = deviation / largest if largest > 1e-12 else np.zeros_like(deviation)
    strength = (1.0 + relative) ** float(gamma)
    return strength / strength.sum()


@register_pooling("reldev")
def reldev(
    items: np.ndarray, gamma: float = 4.0, p: float = 1.0, negatives: str = "clamp"
) -> np.ndarray:
    """Relative-deviation pooling (RDP): a mean weighted towards items far from the clip's mean.

    From Wilkinghoff, Yadav and Tan, "Temporal pooling strategies for training-free anomalous
    sound detection with self-supervised audio embeddings" (arXiv:2603.04605, 2026); the
    formula as implemented here (see :func:`relative_deviation_weights`):
    ``d_t = ||x_t - mean(x)||``, ``r_t = d_t / max(d)``, ``w_t ∝ (1 + r_t)^gamma``, output
    ``sum_t w_t x_t``. ``gamma = 0`` is mean pooling; a larger ``gamma`` stresses the most
    deviating items (up to ``2^gamma`` times the weight of a typical one).

    With ``p != 1`` it is the paper's hybrid RDP + GeM: the weighted generalised mean
    ``(sum_t w_t x_t^p)^(1/p)`` with the same weights and the same ``negatives`` handling
    as :func:`gem`.

    Args:
        items: ``[n, d]`` item vectors.
        gamma: Emphasis on deviating items, >= 0 (the reference setting is 4).
        p: GeM exponent of the hybrid (1: plain RDP, negative values kept as they are).
        negatives: ``"clamp"`` or ``"sign"``, used only when ``p != 1``.
    """
    weights = relative_deviation_weights(items, gamma)
    if float(p) == 1.0:
        return weights @ items
    return _weighted_gem(items, weights, float(p), negatives)
