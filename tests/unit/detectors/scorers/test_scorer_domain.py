"""GenRep back-end: knn_domain (domain-wise z-score), knn_density (local density), MemMixup."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors.scorers import create_scorer, list_scorers
from soundwatch.detectors.scorers.domain import (
    DomainDensityScorer,
    DomainKNNScorer,
    memmixup,
    out_of_fold_distances,
)
from soundwatch.errors import DetectorError


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)


def _two_domains(seed: int = 0, n_source: int = 40, n_target: int = 6, d: int = 5):
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(n_source, d))
    target = rng.normal(scale=0.3, size=(n_target, d)) + 4.0
    items = [row[None] for row in np.vstack([source, target])]
    domains = ["source"] * n_source + ["target"] * n_target
    return source, target, items, domains


def test_registered_with_their_classes():
    assert {"knn_domain", "knn_density"} <= set(list_scorers())
    assert isinstance(create_scorer("knn_domain"), DomainKNNScorer)
    assert isinstance(create_scorer("knn_density"), DomainDensityScorer)


def test_knn_domain_without_normalisation_is_domain_aware_knn():
    _, _, items, domains = _two_domains()
    queries = [r[None] for r in np.random.default_rng(9).normal(size=(8, 5)) * 3]
    plain = create_scorer("knn", metric="euclidean", n_neighbors=2).fit(items, domains)
    mine = create_scorer("knn_domain", normalise="none", n_neighbors=2).fit(items, domains)
    np.testing.assert_allclose(mine.score(queries), plain.score(queries), rtol=1e-12)


@pytest.mark.parametrize("scale", ["target", "own"])
def test_zscore_uses_each_domains_out_of_fold_statistics(scale):
    source, target, items, domains = _two_domains()
    queries = np.random.default_rng(2).normal(size=(7, 5)) * 2 + 1
    scorer = create_scorer("knn_domain", scale=scale).fit(items, domains)
    stats = {}
    for name, bank in (("source", source), ("target", target)):
        d = _dist(bank, bank)
        np.fill_diagonal(d, np.inf)  # one row per clip: out of fold = leave one out
        stats[name] = (d.min(axis=1).mean(), d.min(axis=1).std())
    sd_s = stats["target"][1] if scale == "target" else stats["source"][1]
    sd_t = stats["target"][1]
    expected = np.minimum((_dist(queries, source).min(axis=1) - stats["source"][0]) / sd_s,
                          (_dist(queries, target).min(axis=1) - stats["target"][0]) / sd_t)
    np.testing.assert_allclose(scorer.score([q[None] for q in queries]), expected, rtol=2e-6)


def test_mean_normalisation_divides_by_the_domains_typical_distance():
    source, target, items, domains = _two_domains(1)
    scorer = create_scorer("knn_domain", normalise="mean").fit(items, domains)
    q = np.array([[0.5, 0, 0, 0, 0], [4, 4, 4, 4, 4.5]])
    mu = []
    for bank in (source, target):
        d = _dist(bank, bank)
        np.fill_diagonal(d, np.inf)
        mu.append(d.min(axis=1).mean())
    expected = np.minimum(_dist(q, source).min(axis=1) / mu[0],
                          _dist(q, target).min(axis=1) / mu[1])
    np.testing.assert_allclose(scorer.score([r[None] for r in q]), expected, rtol=2e-6)


def test_out_of_fold_skips_every_frame_of_the_own_clip():
    # clip 0's frames are near-duplicates: leave-one-frame-out would find them at ~0
    rng = np.random.default_rng(3)
    clip0 = rng.normal(size=(1, 4)) + rng.normal(scale=1e-3, size=(5, 4))
    others = rng.normal(size=(6, 4)) + 5
    bank = np.vstack([clip0, others])
    groups = np.r_[np.zeros(5, int), np.arange(1, 7)]
    dist = out_of_fold_distances(bank[:5], groups[:5], bank, groups, 1, "euclidean")
    np.testing.assert_allclose(dist[:, 0], _dist(clip0, others).min(axis=1), rtol=2e-6)
    frames = [clip0, *[r[None] for r in others]]
    scorer = create_scorer("knn_domain").fit(frames, [None] * 7)
    assert scorer.norm_[0, 0] > 1.0  # the typical distance is between clips, not frames


def test_memmixup_mixes_each_target_with_its_nearest_sources():
    source, target, _, _ = _two_domains(4)
    groups = np.arange(len(target)) + 100
    bank, mixed_groups = memmixup(source, target, groups, 3, 0.9, "euclidean")
    assert bank.shape == (len(target) * 4, 5)
    np.testing.assert_array_equal(bank[: len(target)], target)
    nearest3 = np.argsort(_dist(target, source), axis=1)[:, :3]
    expected = 0.9 * target[:, None, :] + 0.1 * source[nearest3]
    np.testing.assert_allclose(bank[len(target):], expected.reshape(-1, 5), rtol=1e-12)
    np.testing.assert_array_equal(mixed_groups, np.r_[groups, np.repeat(groups, 3)])
    assert memmixup(source, target, groups, None, 0.9, "euclidean")[0] is target


def test_memmixup_in_a_scorer_grows_the_target_bank_and_keeps_stats_out_of_fold():
    _, target, items, domains = _two_domains(5)
    plain = create_scorer("knn_domain").fit(items, domains)
    grown = create_scorer("knn_domain", memmixup=4).fit(items, domains)
    assert len(grown.bank_target_) == len(target) * 5 and len(plain.bank_target_) == len(target)
    # a target clip's own mixes are excluded: its typical distance is not ~0.1 x itself
    assert grown.norm_[1, 0] > 0.3 * plain.norm_[1, 0]
    with pytest.raises(DetectorError, match="mixup_lambda"):
        create_scorer("knn_domain", mixup_lambda=1.5).fit(items, domains)


def test_density_score_is_the_minimum_ratio_over_the_bank():
    source, target, items, domains = _two_domains(6)
    queries = np.random.default_rng(7).normal(size=(5, 5)) * 2 + 1
    scorer = create_scorer("knn_density", density_neighbors=3,
                           density_neighbors_target=2).fit(items, domains)
    expected = []
    for bank, k in ((source, 3), (target, 2)):
        d = _dist(bank, bank)
        np.fill_diagonal(d, np.inf)
        radius = np.sort(d, axis=1)[:, :k].sum(axis=1)
        expected.append((_dist(queries, bank) / radius[None, :]).min(axis=1))
    got = scorer.score([q[None] for q in queries])
    np.testing.assert_allclose(got, np.minimum(*expected), rtol=2e-6)
    # the candidates shortcut over every bank row is the exact minimum
    every = create_scorer("knn_density", density_neighbors=3, density_neighbors_target=2,
                          candidates=len(source)).fit(items, domains)
    np.testing.assert_allclose(every.score([q[None] for q in queries]), got, rtol=2e-6)


def test_density_one_bank_when_not_domain_wise():
    source, target, items, domains = _two_domains(8)
    scorer = create_scorer("knn_density", domain_wise=False, density_neighbors=4).fit(
        items, domains)
    assert len(scorer.bank_source_) == len(source) + len(target) and len(scorer.bank_target_) == 0
    q = np.array([[0.0] * 5, [4.0] * 5, [9.0] * 5])
    s = scorer.score([r[None] for r in q])
    assert s[2] > 3 * max(s[0], s[1])  # far from both domains


def test_density_judges_a_distance_against_the_local_spacing():
    # a dense and a sparse normal cluster: the same offset is anomalous only near the dense one
    rng = np.random.default_rng(10)
    dense = rng.normal(scale=0.05, size=(30, 2))
    sparse = rng.normal(scale=1.0, size=(30, 2)) + 20
    items = [r[None] for r in np.vstack([dense, sparse])]
    scorer = create_scorer("knn_density", density_neighbors=3, domain_wise=False).fit(
        items, [None] * 60)
    near_dense = scorer.score([np.array([[0.6, 0.0]])])[0]
    near_sparse = scorer.score([np.array([[20.6, 20.0]])])[0]
    assert near_dense > 3 * near_sparse


@pytest.mark.parametrize("name,params", [("knn_domain", {"n_centroids": 10}),
                                         ("knn_density", {"n_centroids": 10, "memmixup": 2})])
def test_state_round_trip_and_compressed_banks(name, params):
    _, _, items, domains = _two_domains(11)
    scorer = create_scorer(name, **params).fit(items, domains)
    assert len(scorer.bank_source_) == 10
    queries = [r[None] for r in np.random.default_rng(12).normal(size=(6, 5))]
    again = create_scorer(name, **params).load_state(scorer.state())
    np.testing.assert_array_equal(again.score(queries), scorer.score(queries))


@pytest.mark.parametrize("name,params", [
    ("knn_domain", {"normalise": "z"}), ("knn_domain", {"scale": "mean"}),
    ("knn_domain", {"memmixup": -1}), ("knn_domain", {"metric": "cityblock"}),
    ("knn_density", {"density_neighbors": 0}), ("knn_density", {"candidates": 0}),
    ("knn_density", {"domain_wise": "yes"}), ("knn_density", {"index": "hnsw"}),
])
def test_bad_parameters_are_refused(name, params):
    _, _, items, domains = _two_domains()
    with pytest.raises(DetectorError):
        create_scorer(name, **params).fit(items, domains)


def test_a_single_target_clip_and_frame_items_still_score():
    rng = np.random.default_rng(13)
    items = [rng.normal(size=(20, 3)) for _ in range(6)] + [rng.normal(size=(20, 3)) + 3]
    domains = ["source"] * 6 + ["target"]
    for name in ("knn_domain", "knn_density"):
        scorer = create_scorer(name).fit(items, domains)
        scores = scorer.score([rng.normal(size=(20, 3)), rng.normal(size=(20, 3)) + 10])
        assert np.isfinite(scores).all() and scores[1] > scores[0]
