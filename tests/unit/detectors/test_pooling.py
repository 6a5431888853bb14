"""Poolings: the math of each on small arrays, permutation invariance, limits, bad params."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors.pooling import (
    gem,
    list_poolings,
    max_,
    mean,
    meanstd,
    pool,
    relative_deviation_weights,
    reldev,
)
from soundwatch.errors import DetectorError

X = np.array([[1.0, -2.0], [3.0, 4.0], [5.0, 0.5], [-1.0, 2.0]])


def test_registered_names():
    assert {"none", "mean", "meanstd", "max", "gem", "reldev"} <= set(list_poolings())


def test_mean_meanstd_max_values():
    np.testing.assert_allclose(mean(X), [2.0, 1.125])
    np.testing.assert_allclose(max_(X), [5.0, 4.0])
    ms = meanstd(X)
    np.testing.assert_allclose(ms[:2], [2.0, 1.125])
    np.testing.assert_allclose(ms[2:], [np.sqrt(5.0), np.std(X[:, 1])])


def test_gem_hand_computed():
    x = np.array([[1.0, 0.0], [2.0, 3.0]])
    np.testing.assert_allclose(gem(x, p=2.0), [np.sqrt(2.5), np.sqrt(4.5)])


def test_gem_p_one_is_mean_of_clamped_values_and_large_p_approaches_max():
    positive = np.abs(X) + 0.1
    np.testing.assert_allclose(gem(positive, p=1.0), positive.mean(axis=0))
    np.testing.assert_allclose(gem(X, p=1.0), np.maximum(X, 0).mean(axis=0))
    np.testing.assert_allclose(gem(positive, p=200.0), positive.max(axis=0), rtol=0.01)
    # power means grow with p
    assert np.all(gem(positive, p=2.0) >= gem(positive, p=1.0))


def test_gem_negatives_clamp_vs_sign():
    neg = -np.abs(X) - 0.5
    np.testing.assert_allclose(gem(neg, p=3.0), 0.0)  # clamp: never positive -> 0
    signed = gem(X, p=3.0, negatives="sign")
    np.testing.assert_allclose(gem(-X, p=3.0, negatives="sign"), -signed)  # odd symmetry
    np.testing.assert_allclose(gem(X, p=1.0, negatives="sign"), X.mean(axis=0))
    m = np.mean(np.sign(X[:, 0]) * np.abs(X[:, 0]) ** 3)
    assert signed[0] == pytest.approx(np.sign(m) * abs(m) ** (1 / 3))


def test_reldev_weights_hand_computed():
    x = np.array([[0.0], [0.0], [3.0]])  # mean 1; deviations 1, 1, 2 -> relative .5, .5, 1
    w = relative_deviation_weights(x, gamma=1.0)
    np.testing.assert_allclose(w, np.array([1.5, 1.5, 2.0]) / 5.0)
    np.testing.assert_allclose(reldev(x, gamma=1.0), [3.0 * 2.0 / 5.0])


def test_reldev_gamma_zero_is_mean_and_gamma_moves_towards_outlier():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    x[7] += 10.0  # one strongly deviating frame
    np.testing.assert_allclose(reldev(x, gamma=0.0), x.mean(axis=0))
    w = relative_deviation_weights(x, gamma=4.0)
    assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
    assert int(np.argmax(w)) == 7
    gap = [np.linalg.norm(reldev(x, gamma=g) - x[7]) for g in (0.0, 2.0, 8.0)]
    assert gap[0] > gap[1] > gap[2]


def test_reldev_constant_items_is_the_item():
    x = np.tile([[1.0, -2.0, 3.0]], (5, 1))
    np.testing.assert_allclose(reldev(x), [1.0, -2.0, 3.0])


def test_reldev_hybrid_is_weighted_gem():
    positive = np.abs(X) + 0.1
    w = relative_deviation_weights(positive, gamma=2.0)
    expected = (w @ positive**3) ** (1 / 3)
    np.testing.assert_allclose(reldev(positive, gamma=2.0, p=3.0), expected)
    np.testing.assert_allclose(reldev(positive, gamma=0.0, p=3.0), gem(positive, p=3.0))


@pytest.mark.parametrize(
    "name,params",
    [("mean", {}), ("meanstd", {}), ("max", {}), ("gem", {"p": 2.5}),
     ("gem", {"p": 3.0, "negatives": "sign"}), ("reldev", {"gamma": 4.0}),
     ("reldev", {"gamma": 2.0, "p": 2.0})],
)
def test_every_pooling_is_permutation_invariant(name, params):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(15, 4))
    a = pool(name, x, **params)
    b = pool(name, x[rng.permutation(15)], **params)
    assert a.shape[0] == 1 and np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_single_item_pools_to_itself():
    x = np.array([[0.5, 2.0, 1.0]])
    for name in ("mean", "max", "gem", "reldev"):
        np.testing.assert_allclose(pool(name, x)[0], x[0])


@pytest.mark.parametrize(
    "name,params,match",
    [("gem", {"p": 0.0}, "positive"), ("gem", {"p": 2.0, "negatives": "abs"}, "clamp"),
     ("reldev", {"gamma": -1.0}, ">= 0"), ("gem", {"q": 1.0}, "unknown parameter")],
)
def test_bad_parameters_raise_detector_error(name, params, match):
    with pytest.raises(DetectorError, match=match):
        pool(name, X, **params)
