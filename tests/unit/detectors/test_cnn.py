"""The cnn1d and wavevision detectors with each objective, on tiny clips and tiny networks."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors import Detector, create_detector, get_detector_class
from soundwatch.detectors.cnn import CNN1DDetector, InputPrep, WaveVisionDetector
from soundwatch.errors import DetectorError

NETWORKS = ["cnn1d", "wavevision"]
OBJECTIVES = ["supervised", "synthetic", "auxiliary"]


def _make(name, **extra):
    return create_detector(name, **{**get_detector_class(name).test_params, **extra})


def _train_clips(det, toy_set):
    return toy_set.train_labelled if det.supervised else toy_set.train


def _auc(scores, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("name", NETWORKS)
def test_fit_score_each_objective(name, objective, toy_set, tmp_path):
    det = _make(name, objective=objective)
    assert det.supervised == (objective == "supervised")
    det.fit(_train_clips(det, toy_set))
    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    if objective == "auxiliary":
        assert np.all(scores >= -1e-9) and np.all(scores <= 2 + 1e-9)  # cosine distances
    else:
        assert np.all((scores > 0) & (scores < 1))  # probabilities
    emb = det.embed(toy_set.test[:2])
    assert emb.shape == (2, det.network_.network.embedding_dim)
    loaded = Detector.load(det.save(tmp_path / "d"))
    np.testing.assert_array_equal(loaded.score(toy_set.test), scores)


def test_supervised_flag_is_false_on_the_class():
    assert CNN1DDetector.supervised is False and WaveVisionDetector.supervised is False
    assert create_detector("cnn1d", objective="supervised").supervised is True


def test_supervised_needs_both_classes(toy_set):
    det = _make("cnn1d", objective="supervised")
    with pytest.raises(DetectorError, match="both"):
        det.fit(toy_set.train, np.zeros(len(toy_set.train), dtype=int))


def test_supervised_cnn1d_learns_an_easy_task(toy_set):
    det = _make("cnn1d", objective="supervised", epochs=6, batch_size=8, lr=1e-2)
    scores = det.fit(toy_set.train_labelled).score(toy_set.test)
    labels = toy_set.test_labels
    assert _auc(scores, labels) >= 0.9
    # an untrained network already ranks these clips; training must also separate them
    assert scores[labels == 1].mean() - scores[labels == 0].mean() > 0.05


def test_auxiliary_with_sections_classifies_them_and_uses_domains(toy_set):
    clips = [c.with_(section="00" if i % 2 else "01") for i, c in enumerate(toy_set.train)]
    det = _make("cnn1d", objective="auxiliary", margin="arcface", kmeans_source=3)
    det.fit(clips)
    assert det.network_spec_["class_names"] == ["toy|00", "toy|01"]
    assert det.knn_source_.shape[0] == 3  # k-means centres
    assert det.knn_target_.shape[0] == sum(c.domain == "target" for c in clips)
    assert np.all(np.isfinite(det.score(toy_set.test)))


def test_auxiliary_outlier_exposure_adds_one_class_per_synthetic_kind(toy_set, tmp_path):
    clips = [c.with_(section="00" if i % 2 else "01") for i, c in enumerate(toy_set.train)]
    det = _make("cnn1d", objective="auxiliary", aux_synthetic=0.3, synthetic_repeats=2)
    det.fit(clips)
    names = det.network_spec_["class_names"]
    assert names[:2] == ["toy|00", "toy|01"]
    assert names[2:] == [f"synthetic:{k}" for k in det._kinds()]
    # the k-NN banks hold the normal training clips only
    assert det.knn_source_.shape[0] + det.knn_target_.shape[0] == len(clips)
    scores = det.score(toy_set.test)
    assert np.all(np.isfinite(scores)) and np.all(scores >= -1e-9)
    np.testing.assert_array_equal(Detector.load(det.save(tmp_path / "d")).score(toy_set.test),
                                  scores)


@pytest.mark.parametrize("name", NETWORKS)
def test_synthetic_objective_scored_by_knn(name, toy_set, tmp_path):
    det = _make(name, objective="synthetic", synthetic_score="knn").fit(toy_set.train)
    assert det.knn_source_.shape[0] + det.knn_target_.shape[0] == len(toy_set.train)
    scores = det.score(toy_set.test)
    assert np.all(np.isfinite(scores)) and np.all((scores >= -1e-9) & (scores <= 2 + 1e-9))
    np.testing.assert_array_equal(Detector.load(det.save(tmp_path / "d")).score(toy_set.test),
                                  scores)


@pytest.mark.parametrize("name", NETWORKS)
def test_synthetic_objective_with_one_class_per_kind(name, toy_set, tmp_path):
    det = _make(name, objective="synthetic", synthetic_classes="kinds").fit(toy_set.train)
    kinds = list(det._kinds())
    assert det.network_spec_["class_names"] == ["normal", *kinds]
    assert det.network_spec_["n_outputs"] == 1 + len(kinds)
    assert det.network_.network(_prepared_input(det)).shape[1] == 1 + len(kinds)
    scores = det.score(toy_set.test)
    assert np.all((scores > 0) & (scores < 1))  # 1 - p(normal)
    np.testing.assert_array_equal(Detector.load(det.save(tmp_path / "d")).score(toy_set.test),
                                  scores)


@pytest.mark.parametrize("agg", ["mean", "max"])
def test_window_level_knn_keeps_every_training_window(agg, toy_set, tmp_path):
    det = _make("cnn1d", objective="synthetic", synthetic_score="knn", knn_windows=agg,
                window_frames=8).fit(toy_set.train)
    n_windows = sum(len(w) for w in det._per_window(det.clip_features(toy_set.train), True))
    assert n_windows > len(toy_set.train)  # several windows per clip
    assert det.knn_source_.shape[0] + det.knn_target_.shape[0] == n_windows
    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and np.all(np.isfinite(scores))
    np.testing.assert_array_equal(Detector.load(det.save(tmp_path / "d")).score(toy_set.test),
                                  scores)


def _prepared_input(det):
    """A random batch of two network inputs shaped as the detector's prepared windows."""
    import torch

    spec = det.network_spec_
    x = torch.randn(2, spec["channels"], spec["window"])
    return det.network_.prep.eval()(x)


def test_single_auxiliary_class_falls_back_to_synthetic_kinds(toy_set):
    det = _make("cnn1d", objective="auxiliary").fit(toy_set.train)
    names = det.network_spec_["class_names"]
    assert names[0] == "toy|00" and len(names) == 1 + len(det._kinds())


def test_same_seed_same_scores_other_seed_other_scores(toy_set):
    def run(seed):
        det = _make("cnn1d", objective="synthetic", seed=seed)
        return det.fit(toy_set.train[:6]).score(toy_set.test)

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_wavevision_logmel_input_and_longer_clips_are_windowed(toy_set):
    det = _make("wavevision", input="logmel", objective="synthetic", window_frames=20)
    det.fit(toy_set.train)
    assert det.network_spec_["window"] == 20
    assert np.all(np.isfinite(det.score(toy_set.test)))


def test_score_signals_handles_other_rates_and_lengths(toy_set):
    det = _make("cnn1d", objective="synthetic").fit(toy_set.train)
    rng = np.random.default_rng(0)
    scores = det.score_signals(
        [
            rng.standard_normal(8000).astype(np.float32) * 0.1,
            rng.standard_normal(64000).astype(np.float32) * 0.1,
        ],
        8000,
    )
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("cnn1d", {"objective": "contrastive"}),
        ("cnn1d", {"margin": "cosface"}),
        ("cnn1d", {"preset": "huge"}),
        ("cnn1d", {"aux_fields": "colour"}),
        ("cnn1d", {"anomaly_kinds": "tone,explosion"}),
        ("cnn1d", {"snr_min_db": 10.0, "snr_max_db": 0.0}),
        ("cnn1d", {"network_params": {"gru_hidden": -1}}),
        ("cnn1d", {"aux_synthetic": 1.0}),
        ("cnn1d", {"synthetic_repeats": 0}),
        ("cnn1d", {"synthetic_score": "mse"}),
        ("cnn1d", {"synthetic_classes": "many"}),
        ("cnn1d", {"knn_windows": "median"}),
        ("wavevision", {"input": "video"}),
        ("wavevision", {"image_range": "auto"}),
        ("wavevision", {"cmap": "no-such-map"}),
        ("wavevision", {"network_params": {"head": 10}}),
    ],
)
def test_invalid_params_raise(name, params):
    with pytest.raises(DetectorError):
        create_detector(name, **params)


def test_input_prep_masks_and_shifts_only_in_training():
    import torch

    prep = InputPrep("channels", 8, time_mask=0.5, freq_mask=0.5)
    x = torch.randn(4, 8, 30)
    prep.eval()
    torch.testing.assert_close(prep(x), x)
    prep.train()
    torch.manual_seed(0)
    y = prep(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    image = InputPrep("image", 8, image_size=24).eval()(x)
    assert image.shape == (4, 3, 24, 24)


def test_image_range_standard_keeps_levels_that_minmax_hides():
    import torch

    x = torch.randn(1, 8, 30)
    louder = x + 2.0  # the same pattern, every bin 2 units (e.g. dB) higher
    for image_range, same in (("minmax", True), ("standard", False)):
        prep = InputPrep("image", 8, image_size=16, image_range=image_range).eval()
        a, b = prep(x), prep(louder)
        assert a.shape == (1, 3, 16, 16)
        assert torch.equal(a, b) == same, image_range
