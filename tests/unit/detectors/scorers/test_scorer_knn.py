"""The k-NN scorer: distances match scikit-learn, domain-aware banks, k-means, state."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from soundwatch.detectors.scorers import SCORERS, create_scorer
from soundwatch.detectors.scorers.knn import KNNScorer, knn_distance
from soundwatch.errors import DetectorError


def _data(n: int = 30, d: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def _items(x: np.ndarray) -> list[np.ndarray]:
    return [row[None] for row in x]  # one pooled row per clip


def _sklearn_knn(bank: np.ndarray, queries: np.ndarray, k: int, metric: str) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=k, metric=metric).fit(bank)
    dist, _ = nn.kneighbors(queries)
    return dist.mean(axis=1)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 3])
def test_distances_match_sklearn(metric, k):
    # banks are stored in float32 (half the memory): scores agree to float32 precision
    bank, queries = _data(), _data(7, seed=1)
    scorer = KNNScorer(n_neighbors=k, metric=metric, domain_aware=False).fit(
        _items(bank), [None] * len(bank))
    expected = _sklearn_knn(bank, queries, k, metric)
    np.testing.assert_allclose(scorer.score(_items(queries)), expected, rtol=2e-6, atol=1e-12)


def test_knn_distance_in_chunks_matches_one_block(monkeypatch):
    from soundwatch.detectors.scorers import index as index_module

    bank, queries = _data(40), _data(25, seed=2)
    whole = knn_distance(queries, bank, 2, "euclidean")
    monkeypatch.setattr(index_module, "_RERANK_CELLS", 4 * 10 * 5)  # 4 queries per chunk
    monkeypatch.setattr(index_module, "_NUMPY_CELLS", 4 * 40)
    np.testing.assert_allclose(knn_distance(queries, bank, 2, "euclidean"), whole, rtol=1e-12)
    np.testing.assert_allclose(index_module.nearest_numpy(queries, bank, 2, "euclidean")[0]
                               .mean(axis=1), whole, rtol=1e-12)
    # k larger than the bank: every row of the bank counts
    np.testing.assert_allclose(knn_distance(queries, bank[:2], 5, "euclidean"),
                               _sklearn_knn(bank[:2], queries, 2, "euclidean"), rtol=2e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_domain_aware_score_is_the_smaller_of_the_two_banks(metric):
    source, target, queries = _data(20), _data(4, seed=3) + 2.0, _data(6, seed=4)
    x = np.vstack([source, target])
    domains = ["source"] * len(source) + ["target"] * len(target)
    scorer = KNNScorer(n_neighbors=2, metric=metric).fit(_items(x), domains)
    assert scorer.bank_source_.shape == source.shape and scorer.bank_target_.shape == target.shape
    expected = np.minimum(_sklearn_knn(source, queries, 2, metric),
                          _sklearn_knn(target, queries, 2, metric))
    np.testing.assert_allclose(scorer.score(_items(queries)), expected, rtol=2e-6, atol=1e-12)
    # without domain awareness, one bank of everything
    pooled = KNNScorer(n_neighbors=2, metric=metric, domain_aware=False).fit(_items(x), domains)
    assert len(pooled.bank_target_) == 0 and len(pooled.bank_source_) == len(x)
    np.testing.assert_allclose(pooled.score(_items(queries)),
                               _sklearn_knn(x, queries, 2, metric), rtol=2e-6, atol=1e-12)


def test_a_query_near_the_only_target_clip_scores_low():
    source = np.array([[1.0, 0.0], [0.9, 0.1]])
    target = np.array([[0.0, 1.0]])
    scorer = KNNScorer(n_neighbors=1, metric="cosine").fit(
        _items(np.vstack([source, target])), ["source", "source", "target"])
    scores = scorer.score(_items(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])))
    assert scores[0] == pytest.approx(0.0, abs=1e-12)
    assert scores[1] == pytest.approx(0.0, abs=1e-12)
    assert 0 < scores[2] < scores[3]


def test_missing_domains_count_as_source():
    scorer = KNNScorer().fit(_items(np.eye(3)), [None, None, None])
    assert len(scorer.bank_source_) == 3 and len(scorer.bank_target_) == 0
    assert scorer.score(_items(np.eye(3))).shape == (3,)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kmeans_summarises_the_source_bank_only(metric):
    x = _data(40, 4)
    domains = ["source"] * 36 + ["target"] * 4
    scorer = KNNScorer(n_neighbors=1, metric=metric, kmeans_source=5, seed=1).fit(_items(x),
                                                                                  domains)
    assert scorer.bank_source_.shape == (5, 4)
    assert scorer.bank_target_.shape == (4, 4)
    if metric == "cosine":
        np.testing.assert_allclose(np.linalg.norm(scorer.bank_source_, axis=1), 1.0)
        np.testing.assert_allclose(np.linalg.norm(scorer.bank_target_, axis=1), 1.0)
    else:
        np.testing.assert_allclose(scorer.bank_target_, x[36:])
    # more centres than source vectors: the bank is kept as it is
    small = KNNScorer(metric=metric, kmeans_source=50).fit(_items(x), domains)
    assert small.bank_source_.shape == (36, 4)


def test_clip_score_aggregates_its_items_mean_or_max():
    bank = _data(20)
    clip = _data(5, seed=9)
    per_row = _sklearn_knn(bank, clip, 1, "euclidean")
    for aggregate, expected in (("mean", per_row.mean()), ("max", per_row.max())):
        scorer = KNNScorer(metric="euclidean", aggregate=aggregate, domain_aware=False)
        scorer.fit(_items(bank), [None] * len(bank))
        scores = scorer.score([clip, clip[:1]])
        assert scores[0] == pytest.approx(expected, rel=2e-6)
        assert scores[1] == pytest.approx(per_row[0], rel=2e-6)


def test_standardize_equals_scoring_standardised_data():
    rng = np.random.default_rng(5)
    bank = rng.standard_normal((25, 3)) * np.array([1.0, 100.0, 0.01]) + 7.0
    queries = rng.standard_normal((4, 3)) * np.array([1.0, 100.0, 0.01]) + 7.0
    scorer = KNNScorer(metric="euclidean", standardize=True, n_neighbors=2, domain_aware=False)
    scorer.fit(_items(bank), [None] * 25)
    mean, std = bank.mean(axis=0), bank.std(axis=0)
    expected = _sklearn_knn((bank - mean) / std, (queries - mean) / std, 2, "euclidean")
    np.testing.assert_allclose(scorer.score(_items(queries)), expected, rtol=2e-6)


def test_max_rows_keeps_a_seeded_subset():
    x = _data(50)
    a = KNNScorer(max_rows=10, seed=3, domain_aware=False).fit(_items(x), [None] * 50)
    b = KNNScorer(max_rows=10, seed=3, domain_aware=False).fit(_items(x), [None] * 50)
    assert a.bank_source_.shape == (10, 5)
    np.testing.assert_array_equal(a.bank_source_, b.bank_source_)


def test_state_round_trip_gives_identical_scores():
    x, queries = _data(), _data(6, seed=8)
    domains = ["source"] * 25 + ["target"] * 5
    scorer = create_scorer("knn", n_neighbors=2, standardize=True, kmeans_source=4)
    scorer.fit(_items(x), domains)
    state = scorer.state()
    assert set(state) == {"bank_source", "bank_target", "mean", "scale"}
    restored = create_scorer("knn", **scorer.get_params()).load_state(state)
    np.testing.assert_array_equal(restored.score(_items(queries)), scorer.score(_items(queries)))


def test_unfitted_copy_has_the_params_and_nothing_learned():
    scorer = KNNScorer(n_neighbors=4).fit(_items(_data()), [None] * 30)
    copy = scorer.unfitted_copy()
    assert copy.get_params() == scorer.get_params()
    assert not hasattr(copy, "bank_source_")


def test_registry_entry_and_view():
    assert SCORERS.get("knn") is KNNScorer
    assert KNNScorer.requires == "vectors" and KNNScorer.needs_fit


@pytest.mark.parametrize("params", [
    {"n_neighbors": 0}, {"n_neighbors": 1.5}, {"metric": "manhattan"}, {"kmeans_source": 0},
    {"aggregate": "median"}, {"max_rows": 0}, {"standardize": "yes"}, {"domain_aware": "no"},
])
def test_invalid_params_are_refused(params):
    with pytest.raises(DetectorError, match="scorer knn"):
        create_scorer("knn", **params)


def test_unknown_param_and_no_training_vectors_are_refused():
    with pytest.raises(DetectorError, match="n_neighbours"):
        create_scorer("knn", n_neighbours=3)
    with pytest.raises(DetectorError, match="no training vectors"):
        KNNScorer().fit([np.zeros((0, 3))], ["source"])


@pytest.mark.parametrize(("name", "params", "fragment"), [
    ("knn", {"metric": "l1"}, "metric"),
    ("knn_ldn", {"n_neighbors": 0}, "n_neighbors"),
    ("knn_smote", {"domain_aware": 3}, "domain_aware"),
    ("knn_domain", {"n_neighbors": 0}, "n_neighbors"),
    ("knn_domain", {"metric": "l1"}, "metric"),
    ("knn_density", {"domain_wise": "yes"}, "domain_wise"),
])
def test_every_bank_scorer_checks_the_parameters_they_share(name, params, fragment):
    with pytest.raises(DetectorError, match=f"{name}.{fragment}"):
        create_scorer(name, **params)
