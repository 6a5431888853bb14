"""k-NN search: faiss (exact, float64 re-rank) against numpy and scikit-learn; banks at scale."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from soundwatch.detectors.scorers import create_scorer
from soundwatch.detectors.scorers import index as index_module
from soundwatch.detectors.scorers.index import (
    have_faiss,
    kmeans_bank,
    nearest,
    nearest_numpy,
    unit_rows,
)

pytestmark = pytest.mark.skipif(not have_faiss(), reason="faiss-cpu is not installed")


def _bank(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_faiss_search_equals_the_numpy_search(metric, exclude_self):
    bank = _bank(1500)
    if metric == "cosine":
        bank = unit_rows(bank)
    queries = bank if exclude_self else _bank(300, seed=1)
    dist, idx = nearest(queries, bank, 5, metric, exclude_self=exclude_self)
    ref_dist, ref_idx = nearest_numpy(queries, bank, 5, metric, exclude_self=exclude_self)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12, atol=1e-12)
    if exclude_self:
        assert not (idx == np.arange(len(bank))[:, None]).any()


def test_without_faiss_the_numpy_search_is_used(monkeypatch):
    bank, queries = _bank(200), _bank(20, seed=1)
    with_faiss = nearest(queries, bank, 3, "euclidean")
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    assert not have_faiss()
    without = nearest(queries, bank, 3, "euclidean")
    np.testing.assert_array_equal(without[1], with_faiss[1])
    np.testing.assert_allclose(without[0], with_faiss[0], rtol=1e-12)


def test_frame_bank_beyond_the_old_cap_is_kept_whole_and_matches_sklearn():
    # 90 clips x 300 frames = 27,000 frames (the old cap kept 20,000); two domains,
    # standardised, Euclidean, k = 1: the knn-frames recipe against scikit-learn
    rng = np.random.default_rng(3)
    items = [rng.normal(loc=i % 3, size=(300, 8)).astype(np.float32) for i in range(90)]
    domains = ["target" if i % 10 == 0 else "source" for i in range(90)]
    queries = [rng.normal(loc=1.0, size=(50, 8)).astype(np.float32) for _ in range(4)]
    scorer = create_scorer("knn", n_neighbors=1, metric="euclidean", standardize=True,
                           domain_aware=True).fit(items, domains)
    assert len(scorer.bank_source_) + len(scorer.bank_target_) == 27_000
    x = np.concatenate(items).astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    is_target = np.repeat([d == "target" for d in domains], 300)
    z = (x - mean) / std
    expected = []
    for q in queries:
        qz = (q.astype(np.float64) - mean) / std
        per_bank = [NearestNeighbors(n_neighbors=1).fit(z[mask]).kneighbors(qz)[0][:, 0]
                    for mask in (~is_target, is_target)]
        expected.append(np.minimum(*per_bank).mean())
    np.testing.assert_allclose(scorer.score(queries), expected, rtol=2e-6)


def test_scoring_in_row_groups_equals_scoring_at_once(monkeypatch):
    from soundwatch.detectors.scorers import base

    rng = np.random.default_rng(4)
    items = [rng.normal(size=(30, 4)) for _ in range(12)]
    scorer = create_scorer("knn", metric="euclidean").fit(items[:8], [None] * 8)
    whole = scorer.score(items[8:] + [np.zeros((0, 4))])
    monkeypatch.setattr(base, "_CHUNK_ROWS", 25)  # fewer rows than one clip: a clip a group
    np.testing.assert_array_equal(scorer.score(items[8:] + [np.zeros((0, 4))]), whole)
    assert np.isnan(whole[-1])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ivf_index_finds_nearly_all_true_neighbours(metric):
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=5.0, size=(40, 16))
    bank = centres[rng.integers(0, 40, 20_000)] + rng.normal(size=(20_000, 16))
    queries = centres[rng.integers(0, 40, 300)] + rng.normal(size=(300, 16))
    if metric == "cosine":
        bank = unit_rows(bank)
    exact = nearest(queries, bank, 1, metric, index="flat")
    approx = nearest(queries, bank, 1, metric, index="ivf", nprobe=8)
    assert (approx[1][:, 0] == exact[1][:, 0]).mean() >= 0.9
    # a missed neighbour is replaced by a farther one, never a nearer one
    assert (approx[0] >= exact[0] - 1e-12).all()


def test_auto_index_is_exact_below_the_ivf_threshold(monkeypatch):
    bank, queries = _bank(500), _bank(50, seed=1)
    exact = nearest(queries, bank, 2, "euclidean", index="flat")
    auto = nearest(queries, bank, 2, "euclidean", index="auto")
    np.testing.assert_array_equal(auto[1], exact[1])
    monkeypatch.setattr(index_module, "IVF_MIN_ROWS", 100)  # now "auto" builds an IVF index
    ivf = nearest(queries, bank, 2, "euclidean", index="auto")
    assert ivf[0].shape == (50, 2) and (ivf[0] >= exact[0] - 1e-12).all()


def test_kmeans_bank_summarises_large_banks_only():
    bank = _bank(600)
    small = kmeans_bank(bank, 50, "euclidean", seed=0)
    assert small.shape == (50, 16)
    np.testing.assert_array_equal(kmeans_bank(bank, 50, "euclidean", 0), small)  # seeded
    assert kmeans_bank(bank, 1000, "euclidean", 0) is bank
    assert kmeans_bank(bank, None, "euclidean", 0) is bank
    np.testing.assert_allclose(np.linalg.norm(kmeans_bank(bank, 20, "cosine", 0), axis=1), 1.0)


def test_knn_n_centroids_compresses_both_banks():
    rng = np.random.default_rng(6)
    items = [row[None] for row in rng.normal(size=(300, 6))]
    domains = ["target" if i < 40 else "source" for i in range(300)]
    scorer = create_scorer("knn", n_centroids=25).fit(items, domains)
    assert scorer.bank_source_.shape == (25, 6) and scorer.bank_target_.shape == (25, 6)
    with pytest.raises(Exception, match="n_centroids"):
        create_scorer("knn", n_centroids=0).fit(items, domains)
