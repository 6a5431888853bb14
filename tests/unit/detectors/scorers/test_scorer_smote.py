"""knn_smote scorer: SMOTE interpolation, bank sizes, the few-target benefit, state, errors."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from soundwatch.detectors.scorers import create_scorer, list_scorers
from soundwatch.detectors.scorers.smote import SMOTEKNNScorer, smote_oversample
from soundwatch.errors import DetectorError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("imblearn") is None,
    reason="imbalanced-learn not installed (pip install imbalanced-learn)",
)


def _clips(x: np.ndarray) -> list[np.ndarray]:
    return [row[None, :] for row in x]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    u = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-300), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + u * ab)))


def test_registered():
    assert "knn_smote" in list_scorers()


def test_smote_rows_lie_between_minority_neighbours():
    rng = np.random.default_rng(0)
    minority = rng.normal(size=(5, 3)) + 10.0
    grown = smote_oversample(rng.normal(size=(50, 3)), minority, 40, k_neighbors=2, seed=0)
    assert grown.shape == (40, 3)
    np.testing.assert_array_equal(grown[:5], minority)  # originals first, unchanged
    for p in grown[5:]:
        best = min(_segment_distance(p, minority[i], minority[j])
                   for i in range(5) for j in range(5) if i != j)
        assert best < 1e-9
    assert smote_oversample(np.zeros((3, 3)), minority, 4).shape == (5, 3)  # never shrinks
    assert smote_oversample(np.zeros((3, 3)), minority[:1], 10).shape == (1, 3)


def test_bank_sizes_and_ratio():
    rng = np.random.default_rng(1)
    items = _clips(rng.normal(size=(60, 4))) + _clips(rng.normal(size=(3, 4)) + 5)
    domains = ["source"] * 60 + ["target"] * 3
    one_bank = create_scorer("knn_smote", metric="euclidean").fit(items, domains)
    assert one_bank.bank_source_.shape == (120, 4) and int(one_bank.n_synthetic_) == 57
    two = create_scorer("knn_smote", domain_aware=True, target_ratio=0.5).fit(items, domains)
    assert two.bank_source_.shape == (60, 4) and two.bank_target_.shape == (30, 4)
    np.testing.assert_allclose(np.linalg.norm(two.bank_target_, axis=1), 1.0, rtol=1e-6)  # unit


def test_without_target_clips_it_is_plain_knn():
    rng = np.random.default_rng(2)
    train, test = rng.normal(size=(30, 5)), rng.normal(size=(8, 5))
    smote = create_scorer("knn_smote", n_neighbors=3).fit(_clips(train), ["source"] * 30)
    knn = create_scorer("knn", n_neighbors=3, domain_aware=False).fit(_clips(train), [None] * 30)
    np.testing.assert_allclose(smote.score(_clips(test)), knn.score(_clips(test)))
    assert int(smote.n_synthetic_) == 0


def test_smote_keeps_normal_target_clips_from_looking_anomalous():
    # k = 5 > 4 target clips: without SMOTE a normal target clip's 5th neighbour is a far
    # source clip, so target normals score like source anomalies (the DCASE domain shift)
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    centre = np.array([4.0, 4.0, 0.0, 0.0])
    shift = np.array([0.0, 0.0, 1.5, 0.0])

    def cloud(mean, n):
        return mean + rng.normal(scale=0.3, size=(n, 4))

    items = _clips(cloud(0.0, 200)) + _clips(cloud(centre, 4))
    domains = ["source"] * 200 + ["target"] * 4
    test = [cloud(0.0, 30), cloud(centre, 30), cloud(shift, 30), cloud(centre + shift, 30)]
    test = _clips(np.concatenate(test))
    labels = [0] * 60 + [1] * 60
    plain = create_scorer("knn", n_neighbors=5, metric="euclidean", domain_aware=False)
    smote = create_scorer("knn_smote", n_neighbors=5, metric="euclidean")
    auc_plain = roc_auc_score(labels, plain.fit(items, domains).score(test))
    auc_smote = roc_auc_score(labels, smote.fit(items, domains).score(test))
    assert auc_smote > 0.95 and auc_smote > auc_plain + 0.1


def test_state_roundtrip_is_deterministic():
    rng = np.random.default_rng(4)
    items = _clips(rng.normal(size=(20, 3))) + _clips(rng.normal(size=(4, 3)))
    domains = ["source"] * 20 + ["target"] * 4
    a = create_scorer("knn_smote", seed=7).fit(items, domains)
    b = create_scorer("knn_smote", seed=7).fit(items, domains)
    np.testing.assert_array_equal(a.bank_source_, b.bank_source_)
    query = [rng.normal(size=(3, 3)), rng.normal(size=(1, 3))]
    clone = SMOTEKNNScorer(**a.get_params()).load_state(a.state())
    np.testing.assert_array_equal(clone.score(query), a.score(query))


def test_missing_imbalanced_learn_is_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "imblearn", None)
    monkeypatch.setitem(sys.modules, "imblearn.over_sampling", None)
    with pytest.raises(DetectorError, match="pip install imbalanced-learn"):
        smote_oversample(np.zeros((5, 2)), np.eye(2)[[0, 1, 0]] + [[0, 0], [0, 0], [1, 1]], 6)


@pytest.mark.parametrize("params", [{"target_ratio": 0}, {"smote_neighbors": 0},
                                    {"metric": "l1"}])
def test_bad_parameters(params):
    with pytest.raises(DetectorError):
        create_scorer("knn_smote", **params)


def test_empty_clip_scores_nan_and_rows_average_per_clip():
    rng = np.random.default_rng(5)
    train = [rng.standard_normal((4, 3)) for _ in range(10)]
    domains = ["source"] * 8 + ["target"] * 2
    scorer = create_scorer("knn_smote").fit(train, domains)
    scores = scorer.score([train[0], np.zeros((0, 3)), train[1]])
    assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all()
    clip = rng.standard_normal((5, 3))
    rows = scorer.score([r[None] for r in clip])
    assert scorer.score([clip])[0] == pytest.approx(rows.mean(), rel=1e-12)
