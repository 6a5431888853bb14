"""The Scorer base: rows of a clip, per-clip aggregation, RowScorer subsampling."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors.scorers import SCORERS, create_scorer
from soundwatch.detectors.scorers.base import as_rows, per_clip


def test_as_rows_shapes():
    assert as_rows(np.arange(3.0)).shape == (1, 3)
    assert as_rows(np.zeros((4, 2, 3))).shape == (4, 6)
    assert as_rows(np.zeros((2, 5), np.float32)).dtype == np.float64
    assert as_rows(np.zeros((0, 3))).shape == (0, 3)  # a clip without items


def test_per_clip_mean_max_and_empty_clips():
    per_row = np.array([1.0, 3.0, 5.0, 2.0])
    np.testing.assert_array_equal(per_clip(per_row, [3, 0, 1], "mean"), [3.0, np.nan, 2.0])
    np.testing.assert_array_equal(per_clip(per_row, [3, 0, 1], "max"), [5.0, np.nan, 2.0])


@pytest.mark.parametrize("name", ["knn", "mahalanobis", "gmm", "mse", "probability", "elbo",
                                  "selective_mahalanobis"])
def test_a_clip_without_items_scores_nan_and_the_others_do_not(name):
    rng = np.random.default_rng(0)
    train = [rng.standard_normal((3, 4)) for _ in range(12)]
    scorer = create_scorer(name, **({"variant": "baseline", "block_size": 4}
                                    if name == "selective_mahalanobis" else {}))
    scorer.fit(train, ["source"] * 12)
    scores = scorer.score([train[0], np.zeros((0, 4)), train[1]])
    assert np.isnan(scores[1])
    assert np.isfinite(scores[[0, 2]]).all()


@pytest.mark.parametrize("name", ["knn", "mahalanobis", "gmm"])
def test_row_scorers_score_every_row_and_average_per_clip(name):
    rng = np.random.default_rng(1)
    train = [rng.standard_normal((4, 3)) for _ in range(10)]
    scorer = create_scorer(name).fit(train, ["source"] * 10)
    clip = rng.standard_normal((5, 3))
    rows = scorer.score([r[None] for r in clip])
    assert scorer.score([clip])[0] == pytest.approx(rows.mean(), rel=1e-12)
    high = create_scorer(name, aggregate="max").fit(train, ["source"] * 10)
    assert high.score([clip])[0] == pytest.approx(rows.max(), rel=1e-12)


def test_every_scorer_declares_a_view_and_scores_in_numpy():
    for name in SCORERS.names():
        cls = SCORERS.get(name)
        assert cls.requires in ("vectors", "residual", "probability", "elbo")
        assert isinstance(cls.needs_fit, bool)
