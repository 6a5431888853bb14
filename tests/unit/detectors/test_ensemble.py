"""EnsembleDetector: members' scores normalised against their training scores, combined."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors import Detector, create_detector
from soundwatch.detectors.base import normalize_scores
from soundwatch.errors import DetectorError

SMALL = {"frontend_params": {"n_mels": 32}}
MEMBERS = [{"detector": "mahalanobis", "params": SMALL},
           {"detector": "knn", "params": {**SMALL, "scorer__n_neighbors": 2}}]


@pytest.fixture(scope="module")
def fitted(toy_set):
    return {combine: create_detector("ensemble", members=MEMBERS, combine=combine, weights=None)
            .fit(toy_set.train) for combine in ("mean", "max")}


def test_mean_of_zscores_of_the_members(fitted, toy_set):
    det = fitted["mean"]
    raw = [m.score(toy_set.test) for m in det.members_]
    z = [(r - m.train_scores_.mean()) / m.train_scores_.std()
         for r, m in zip(raw, det.members_, strict=True)]
    np.testing.assert_allclose(det.score(toy_set.test), np.mean(z, axis=0))
    np.testing.assert_allclose(fitted["max"].score(toy_set.test), np.max(z, axis=0))


def test_weights_and_percentile_normalisation(fitted, toy_set):
    det = create_detector("ensemble", members=MEMBERS, weights=[3, 1], normalize="percentile")
    det.fit(toy_set.train)
    per = [normalize_scores(m.score(toy_set.test), m.train_scores_, "percentile")
           for m in det.members_]
    np.testing.assert_allclose(det.score(toy_set.test), (3 * per[0] + per[1]) / 4)
    assert np.all((det.score(toy_set.test) >= 0) & (det.score(toy_set.test) <= 100))


def test_threshold_from_combined_training_scores(fitted, toy_set):
    det = fitted["mean"]
    assert det.train_scores_.shape == (len(toy_set.train),)
    np.testing.assert_array_equal(det.predict(toy_set.test),
                                  (det.score(toy_set.test) > det.threshold_).astype(int))
    labels = toy_set.test_labels
    assert det.score(toy_set.test)[labels == 1].mean() > det.score(toy_set.test)[labels == 0].mean()


def test_save_and_load_keep_every_member(fitted, toy_set, tmp_path):
    det = fitted["mean"]
    loaded = Detector.load(det.save(tmp_path / "ens"))
    assert (tmp_path / "ens" / "member_1" / "config.json").is_file()
    np.testing.assert_array_equal(loaded.score(toy_set.test), det.score(toy_set.test))


@pytest.mark.parametrize(("params", "match"), [
    ({"members": []}, "at least one member"),
    ({"members": [{"params": {}}]}, "'detector'"),
    ({"members": [{"detector": "nope"}]}, "unknown detector"),
    ({"combine": "median"}, "mean or max"),
    ({"weights": [1]}, "one non-negative weight per member"),
    ({"members": [{"detector": "ensemble"}]}, "cannot hold an ensemble"),
])
def test_bad_ensembles_are_refused(params, match):
    with pytest.raises(DetectorError, match=match):
        create_detector("ensemble", **{"members": MEMBERS, "weights": None, **params})
