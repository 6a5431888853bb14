"""knn_ldn scorer: neighbour search, radii, the normalisation's math and its density property."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors.scorers import create_scorer, list_scorers
from soundwatch.detectors.scorers.ldn import (
    LDNKNNScorer,
    ldn_scores,
    leave_one_out_radius,
    nearest,
)
from soundwatch.errors import DetectorError


def _clips(x: np.ndarray) -> list[np.ndarray]:
    return [row[None, :] for row in x]


def test_registered():
    assert "knn_ldn" in list_scorers()
    assert isinstance(create_scorer("knn_ldn", n_neighbors=2), LDNKNNScorer)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_nearest_matches_brute_force(metric):
    rng = np.random.default_rng(0)
    bank, queries = rng.normal(size=(30, 5)), rng.normal(size=(7, 5))
    if metric == "cosine":
        bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        full = 1 - qn @ bank.T
    else:
        full = np.linalg.norm(queries[:, None] - bank[None], axis=2)
    dist, idx = nearest(queries, bank, 4, metric)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :4], atol=1e-12)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1)[:, :4])
    own, own_idx = nearest(bank, bank, 3, metric, exclude_self=True)
    assert not (own_idx == np.arange(30)[:, None]).any()
    assert nearest(bank[:2], bank[:2], 5, metric, exclude_self=True)[0].shape == (2, 1)


def test_radius_and_score_hand_computed():
    bank = np.array([[0.0], [1.0], [3.0]])
    radius = leave_one_out_radius(bank, 1, "euclidean")
    np.testing.assert_allclose(radius, [1.0, 1.0, 2.0])
    # query 5: nearest 3 at distance 2; its 2 nearest bank rows (3, 1) have radii 2 and 1
    score = ldn_scores(np.array([[5.0]]), bank, radius, 1, 2, "euclidean")
    np.testing.assert_allclose(score, [2.0 / 1.5])
    assert leave_one_out_radius(bank[:1], 1, "euclidean").tolist() == [1.0]
    dup = leave_one_out_radius(np.array([[0.0], [0.0], [1.0], [3.0]]), 1, "euclidean")
    assert dup.min() > 0


def test_density_normalisation_judges_a_distance_against_local_spacing():
    rng = np.random.default_rng(1)
    dense = rng.normal(scale=0.01, size=(100, 2))
    sparse = rng.normal(scale=1.0, size=(100, 2)) + [20.0, 0.0]
    train = np.concatenate([dense, sparse])
    off_dense = np.array([[0.3, 0.0]])   # 30 x the dense cluster's spread: anomalous
    in_sparse = np.array([[20.5, 0.5]])  # inside the sparse cluster: normal
    knn = create_scorer("knn", metric="euclidean", domain_aware=False).fit(_clips(train),
                                                                          [None] * 200)
    ldn = create_scorer("knn_ldn", metric="euclidean", density_neighbors=3).fit(
        _clips(train), [None] * 200)
    plain = knn.score([off_dense, in_sparse])
    normalised = ldn.score([off_dense, in_sparse])
    assert normalised[0] > 3 * normalised[1]
    assert normalised[0] / normalised[1] > 5 * plain[0] / plain[1]


def test_scale_invariant_with_euclidean_metric():
    rng = np.random.default_rng(2)
    train, test = rng.normal(size=(40, 4)), rng.normal(size=(10, 4)) * 1.5
    a = create_scorer("knn_ldn", metric="euclidean", n_neighbors=2).fit(_clips(train),
                                                                        [None] * 40)
    b = create_scorer("knn_ldn", metric="euclidean", n_neighbors=2).fit(_clips(7 * train),
                                                                        [None] * 40)
    np.testing.assert_allclose(a.score(_clips(test)), b.score(_clips(7 * test)), rtol=2e-6)


def test_domain_aware_banks_state_roundtrip_and_frame_items():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(30, 6)) + 3.0
    target = rng.normal(size=(4, 6)) - 3.0
    items = _clips(source) + _clips(target)
    domains = ["source"] * 30 + ["target"] * 4
    scorer = create_scorer("knn_ldn", n_neighbors=1, density_neighbors=2).fit(items, domains)
    assert scorer.bank_source_.shape == (30, 6) and scorer.bank_target_.shape == (4, 6)
    queries = [rng.normal(size=(5, 6)) - 3.0, rng.normal(size=(1, 6)) + 3.0]
    scores = scorer.score(queries)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    clone = LDNKNNScorer(**scorer.get_params()).load_state(scorer.state())
    np.testing.assert_array_equal(clone.score(queries), scores)
    pooled = create_scorer("knn_ldn", domain_aware=False).fit(items, domains)
    assert pooled.bank_target_.shape[0] == 0 and pooled.bank_source_.shape[0] == 34


@pytest.mark.parametrize("params", [{"n_neighbors": 0}, {"density_neighbors": 1.5},
                                    {"metric": "manhattan"}, {"domain_aware": "yes"}])
def test_bad_parameters(params):
    with pytest.raises(DetectorError):
        create_scorer("knn_ldn", **params)


def test_empty_clip_scores_nan_and_rows_average_per_clip():
    rng = np.random.default_rng(4)
    train = [rng.standard_normal((4, 3)) for _ in range(10)]
    scorer = create_scorer("knn_ldn").fit(train, ["source"] * 10)
    scores = scorer.score([train[0], np.zeros((0, 3)), train[1]])
    assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all()
    clip = rng.standard_normal((5, 3))
    rows = scorer.score([r[None] for r in clip])
    assert scorer.score([clip])[0] == pytest.approx(rows.mean(), rel=1e-12)
    high = create_scorer("knn_ldn", aggregate="max").fit(train, ["source"] * 10)
    assert high.score([clip])[0] == pytest.approx(rows.max(), rel=1e-12)
