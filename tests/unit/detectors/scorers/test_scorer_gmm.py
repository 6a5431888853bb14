"""The GMM scorer: numpy scoring equals scikit-learn's for every covariance type."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from soundwatch.detectors.scorers import create_scorer
from soundwatch.detectors.scorers.gmm import GMMScorer
from soundwatch.errors import DetectorError

COVARIANCES = ["full", "diag", "tied", "spherical"]


def _data(n: int = 60, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    half = n // 2
    return np.vstack([rng.standard_normal((half, d)) @ rng.standard_normal((d, d)),
                      rng.standard_normal((n - half, d)) * 0.5 + 4.0])


def _items(x: np.ndarray) -> list[np.ndarray]:
    return [row[None] for row in x]


@pytest.mark.parametrize("covariance_type", COVARIANCES)
def test_numpy_scores_equal_sklearn_score_samples(covariance_type):
    x, queries = _data(), _data(12, seed=5) * 1.5
    scorer = GMMScorer(n_components=2, covariance_type=covariance_type, standardize=False,
                       seed=3).fit(_items(x), [None] * len(x))
    reference = GaussianMixture(n_components=2, covariance_type=covariance_type,
                                reg_covar=1e-3, random_state=3, max_iter=200).fit(x)
    np.testing.assert_allclose(scorer.score(_items(queries)),
                               -reference.score_samples(queries), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCES)
def test_state_round_trip_gives_identical_scores(covariance_type):
    x, queries = _data(), _data(7, seed=2)
    scorer = create_scorer("gmm", covariance_type=covariance_type).fit(_items(x), [None] * 60)
    state = scorer.state()
    assert {"weights", "means", "precisions_cholesky", "mean", "scale"} == set(state)
    restored = create_scorer("gmm", **scorer.get_params()).load_state(state)
    np.testing.assert_array_equal(restored.score(_items(queries)), scorer.score(_items(queries)))


def test_standardize_equals_scoring_standardised_data():
    x = _data() * [1.0, 50.0, 0.02]
    queries = _data(6, seed=4) * [1.0, 50.0, 0.02]
    mean, std = x.mean(axis=0), x.std(axis=0)
    scorer = GMMScorer(standardize=True).fit(_items(x), [None] * 60)
    reference = GaussianMixture(n_components=2, covariance_type="diag", reg_covar=1e-3,
                                random_state=0, max_iter=200).fit((x - mean) / std)
    np.testing.assert_allclose(scorer.score(_items(queries)),
                               -reference.score_samples((queries - mean) / std), rtol=1e-9)


def test_more_components_than_vectors_are_capped():
    x = _data(3)
    scorer = GMMScorer(n_components=8).fit(_items(x), [None] * 3)
    assert scorer.means_.shape[0] == 3
    assert np.isfinite(scorer.score(_items(x))).all()


def test_a_far_point_scores_higher():
    x = _data()
    scorer = GMMScorer().fit(_items(x), [None] * 60)
    near, far = scorer.score([x[:1], x[:1] + 100.0])
    assert far > near


def test_same_seed_same_mixture():
    x = _data()
    a = GMMScorer(seed=2).fit(_items(x), [None] * 60)
    b = GMMScorer(seed=2).fit(_items(x), [None] * 60)
    np.testing.assert_array_equal(a.means_, b.means_)


@pytest.mark.parametrize("params", [
    {"n_components": 0}, {"covariance_type": "banded"}, {"reg_covar": 0.0},
    {"reg_covar": "small"}, {"aggregate": "min"}, {"max_rows": 0},
])
def test_invalid_params_are_refused(params):
    with pytest.raises(DetectorError, match="scorer gmm"):
        create_scorer("gmm", **params)
