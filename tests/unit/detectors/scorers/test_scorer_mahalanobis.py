"""Mahalanobis scorers: Ledoit-Wolf shrunk, and selective Mahalanobis (shrunk and baseline)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from sklearn.covariance import LedoitWolf

from soundwatch.detectors.scorers import create_scorer
from soundwatch.detectors.scorers.mahalanobis import (
    MahalanobisScorer,
    SelectiveMahalanobisScorer,
    shrunk_precision,
)
from soundwatch.errors import DetectorError


def _data(n: int = 40, d: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d))
    return rng.standard_normal((n, d)) @ mix + rng.standard_normal(d)


def _items(x: np.ndarray) -> list[np.ndarray]:
    return [row[None] for row in x]


# ----------------------------------------------------------------- shrunk Mahalanobis


def test_shrunk_precision_is_ledoit_wolf():
    x = _data()
    lw = LedoitWolf().fit(x)
    mean, precision, shrinkage = shrunk_precision(x)
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(precision, lw.precision_, rtol=1e-10)
    assert shrinkage == pytest.approx(lw.shrinkage_)
    # one sample: a scaled identity, no error
    _, one, s = shrunk_precision(x[:1])
    assert s == 1.0 and np.allclose(one, np.diag(np.diag(one)))


@pytest.mark.parametrize("squared", [False, True])
def test_distance_matches_scipy_and_sklearn(squared):
    x, queries = _data(), _data(6, seed=1)
    scorer = MahalanobisScorer(standardize=False, squared=squared).fit(_items(x), [None] * 40)
    lw = LedoitWolf().fit(x)
    expected_sq = lw.mahalanobis(queries)
    scores = scorer.score(_items(queries))
    np.testing.assert_allclose(scores, expected_sq if squared else np.sqrt(expected_sq),
                               rtol=1e-9)
    if not squared:
        by_scipy = [scipy_mahalanobis(q, lw.location_, lw.precision_) for q in queries]
        np.testing.assert_allclose(scores, by_scipy, rtol=1e-9)


def test_standardize_equals_distance_of_standardised_data():
    x, queries = _data() * [1, 100, 0.01, 5], _data(5, seed=2) * [1, 100, 0.01, 5]
    mean, std = x.mean(axis=0), x.std(axis=0)
    scorer = MahalanobisScorer(standardize=True).fit(_items(x), [None] * 40)
    lw = LedoitWolf().fit((x - mean) / std)
    np.testing.assert_allclose(scorer.score(_items(queries)),
                               np.sqrt(lw.mahalanobis((queries - mean) / std)), rtol=1e-9)


def test_mahalanobis_state_round_trip():
    x, queries = _data(), _data(5, seed=3)
    scorer = create_scorer("mahalanobis").fit(_items(x), [None] * 40)
    state = scorer.state()
    assert set(state) == {"location", "precision", "shrinkage", "mean", "scale"}
    restored = create_scorer("mahalanobis", **scorer.get_params()).load_state(state)
    np.testing.assert_array_equal(restored.score(_items(queries)), scorer.score(_items(queries)))


@pytest.mark.parametrize("params", [{"aggregate": "sum"}, {"max_rows": 0},
                                    {"standardize": None}])
def test_mahalanobis_invalid_params(params):
    with pytest.raises(DetectorError, match="scorer mahalanobis"):
        create_scorer("mahalanobis", **params)


# ----------------------------------------------------------------- selective Mahalanobis


def _residual_set(seed: int = 0, n_source: int = 30, n_target: int = 6, rows: int = 5,
                  d: int = 6):
    rng = np.random.default_rng(seed)
    source = [rng.standard_normal((rows, d)) for _ in range(n_source)]
    target = [rng.standard_normal((rows, d)) * np.linspace(0.5, 2.0, d) + 0.3
              for _ in range(n_target)]
    return source + target, ["source"] * n_source + ["target"] * n_target


def test_shrunk_variant_is_the_smaller_domain_distance_of_the_mean_residual():
    items, domains = _residual_set()
    scorer = SelectiveMahalanobisScorer(variant="shrunk").fit(items, domains)
    source_rows = np.concatenate([i for i, d in zip(items, domains, strict=True) if d == "source"])
    target_rows = np.concatenate([i for i, d in zip(items, domains, strict=True) if d == "target"])
    p_source = LedoitWolf().fit(source_rows).precision_
    p_target = LedoitWolf().fit(target_rows).precision_
    np.testing.assert_allclose(scorer.precision_source_, p_source, rtol=1e-10)
    np.testing.assert_allclose(scorer.precision_target_, p_target, rtol=1e-10)
    assert not np.allclose(p_source, p_target)
    queries = [np.random.default_rng(7).standard_normal((4, 6)) for _ in range(3)]
    expected = [min(q.mean(0) @ p_source @ q.mean(0), q.mean(0) @ p_target @ q.mean(0))
                for q in queries]
    np.testing.assert_allclose(scorer.score(queries), expected, rtol=1e-10)


def test_baseline_variant_is_n_times_the_block_form_with_the_empirical_covariance():
    block = 3
    items, domains = _residual_set(d=2 * block)  # each residual row holds 2 blocks (frames)
    scorer = SelectiveMahalanobisScorer(variant="baseline", block_size=block).fit(items, domains)
    precisions = {}
    for domain in ("source", "target"):
        blocks = np.concatenate([i.reshape(-1, block)
                                 for i, d in zip(items, domains, strict=True) if d == domain])
        cov = np.cov(blocks, rowvar=False, bias=True)  # centred, divided by the count
        precisions[domain] = np.linalg.inv(cov)
    np.testing.assert_allclose(scorer.precision_source_, precisions["source"], rtol=1e-8)
    np.testing.assert_allclose(scorer.precision_target_, precisions["target"], rtol=1e-8)
    query = np.random.default_rng(3).standard_normal((4, 2 * block))
    blocks = query.reshape(-1, block)
    b, n = blocks.mean(axis=0), len(blocks)
    expected = n * min(b @ precisions["source"] @ b, b @ precisions["target"] @ b)
    assert scorer.score([query])[0] == pytest.approx(expected, rel=1e-8)
    # the nttcslab formula: sum over blocks of the quadratic form of their mean, / n
    mean_b = np.tile(b, (n, 1))
    official = min(np.sum(mean_b @ precisions[d] @ mean_b.T) / n for d in precisions)
    assert scorer.score([query])[0] == pytest.approx(official, rel=1e-8)


@pytest.mark.parametrize("variant", ["shrunk", "baseline"])
@pytest.mark.parametrize("missing", ["source", "target"])
def test_a_missing_domain_uses_the_other_covariance(variant, missing, caplog):
    items, domains = _residual_set()
    kept = [(i, d) for i, d in zip(items, domains, strict=True) if d != missing]
    with caplog.at_level(logging.INFO, logger="soundwatch"):
        scorer = SelectiveMahalanobisScorer(variant=variant, block_size=6).fit(
            [i for i, _ in kept], [d for _, d in kept])
    np.testing.assert_array_equal(scorer.precision_source_, scorer.precision_target_)
    assert f"no {missing}-domain training clips" in caplog.text


def test_clips_without_a_domain_count_as_source():
    items, _ = _residual_set(n_target=0)
    a = SelectiveMahalanobisScorer().fit(items, [None] * len(items))
    b = SelectiveMahalanobisScorer().fit(items, ["source"] * len(items))
    np.testing.assert_array_equal(a.precision_source_, b.precision_source_)


def test_shrunk_variant_subsamples_max_rows_with_its_seed():
    items, domains = _residual_set(n_source=40)
    a = SelectiveMahalanobisScorer(max_rows=25, seed=1).fit(items, domains)
    b = SelectiveMahalanobisScorer(max_rows=25, seed=1).fit(items, domains)
    full = SelectiveMahalanobisScorer().fit(items, domains)
    np.testing.assert_array_equal(a.precision_source_, b.precision_source_)
    assert not np.allclose(a.precision_source_, full.precision_source_)


def test_singular_baseline_covariance_uses_the_pseudo_inverse(caplog):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 2))
    items = [np.hstack([base[i : i + 1], base[i : i + 1]]) for i in range(40)]  # rank 2 of 4
    with caplog.at_level(logging.WARNING):
        scorer = SelectiveMahalanobisScorer(variant="baseline", block_size=4).fit(
            items, ["source"] * 40)
    assert "pseudo-inverse" in caplog.text
    assert np.isfinite(scorer.score(items[:3])).all()


def test_selective_state_round_trip_and_errors():
    items, domains = _residual_set()
    scorer = create_scorer("selective_mahalanobis", variant="baseline", block_size=3)
    scorer.fit(items, domains)
    restored = create_scorer("selective_mahalanobis", **scorer.get_params())
    restored.load_state(scorer.state())
    np.testing.assert_array_equal(restored.score(items[:5]), scorer.score(items[:5]))
    assert SelectiveMahalanobisScorer.requires == "residual"
    with pytest.raises(DetectorError, match="block_size"):
        SelectiveMahalanobisScorer(variant="baseline", block_size=4).fit(items, domains)
    with pytest.raises(DetectorError, match="no training residuals"):
        SelectiveMahalanobisScorer().fit([], [])
    for params in ({"variant": "official"}, {"block_size": 0}, {"max_rows": -1}):
        with pytest.raises(DetectorError, match="scorer selective_mahalanobis"):
            create_scorer("selective_mahalanobis", **params)
