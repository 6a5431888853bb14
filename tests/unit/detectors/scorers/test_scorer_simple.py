"""Scorers with nothing to learn: probability, reconstruction MSE and negative ELBO."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors.scorers import SCORERS, create_scorer
from soundwatch.errors import DetectorError

ITEMS = [np.array([[0.1], [0.3], [0.8]]), np.array([[0.5]])]


@pytest.mark.parametrize(("name", "view"), [("probability", "probability"),
                                            ("mse", "residual"), ("elbo", "elbo")])
def test_view_and_nothing_to_fit(name, view):
    cls = SCORERS.get(name)
    assert cls.requires == view and cls.needs_fit is False
    scorer = create_scorer(name)
    assert scorer.fit(ITEMS, [None, None]) is scorer
    assert scorer.state() == {}
    assert scorer.load_state({}) is scorer


@pytest.mark.parametrize("name", ["probability", "elbo"])
def test_mean_or_max_of_the_item_values(name):
    np.testing.assert_allclose(create_scorer(name).score(ITEMS), [0.4, 0.5])
    np.testing.assert_allclose(create_scorer(name, aggregate="max").score(ITEMS), [0.8, 0.5])


def test_mse_is_the_mean_square_over_dimensions_then_items():
    residuals = [np.array([[1.0, -1.0], [2.0, 0.0]]), np.array([[3.0, 1.0]])]
    # per item: (1 + 1) / 2 = 1, (4 + 0) / 2 = 2; clip 2: (9 + 1) / 2 = 5
    np.testing.assert_allclose(create_scorer("mse").score(residuals), [1.5, 5.0])
    np.testing.assert_allclose(create_scorer("mse", aggregate="max").score(residuals),
                               [2.0, 5.0])


def test_scores_are_float64_one_per_clip():
    scores = create_scorer("mse").score([np.ones((2, 3), np.float32)] * 4)
    assert scores.dtype == np.float64 and scores.shape == (4,)
    assert create_scorer("probability").score([]).shape == (0,)


@pytest.mark.parametrize("name", ["probability", "mse", "elbo"])
def test_invalid_aggregate_and_unknown_param(name):
    with pytest.raises(DetectorError, match=f"scorer {name}.aggregate"):
        create_scorer(name, aggregate="median")
    with pytest.raises(DetectorError, match="n_neighbors"):
        create_scorer(name, n_neighbors=3)
