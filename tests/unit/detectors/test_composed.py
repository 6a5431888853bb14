"""ComposedDetector: compositions of front-end, encoder, objective, pooling and scorer.

Ported from the tests of the former one-class-per-detector modules (cnn, classical,
reconstruction, determinism, resume) to the composed API, plus the regression test of
issue 14 (gamma thresholds fitted on in-sample 1-NN scores flagged every test clip).
"""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch

from soundwatch.detectors import Detector, create_detector, get_detector_class
from soundwatch.detectors.composed import ComposedDetector
from soundwatch.detectors.pooling import pool
from soundwatch.errors import DetectorError
from soundwatch.training.context import RunContext

KINDS = "noise,tone,impulses,burst,notch"  # no pitch shift: librosa's first call is slow


def _make(name: str, **extra) -> Detector:
    """A preset with its test params; switching a part drops the test params of that part."""
    params = dict(get_detector_class(name).test_params)
    for part in ("frontend", "encoder", "objective", "pooling", "scorer"):
        if part in extra:
            params = {k: v for k, v in params.items()
                      if not k.startswith((f"{part}__", f"{part}_params"))}
    return create_detector(name, **{**params, **extra})


def _train(det, toy_set):
    return toy_set.train_labelled if det.supervised else toy_set.train


def _auc(scores, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


def _sectioned(clips):
    return [c.with_(section="00" if i % 2 else "01") for i, c in enumerate(clips)]


def _same_scores_after_reload(det, clips, tmp_path):
    loaded = Detector.load(det.save(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.score(clips), det.score(clips))


@pytest.fixture(scope="module")
def ae(toy_set):
    """The ae preset (MSE on residuals) fitted on the toy set."""
    return _make("ae").fit(toy_set.train)


# ----------------------------------------------------------------- classifier objectives


@pytest.mark.parametrize("objective", ["supervised", "synthetic", "auxiliary"])
@pytest.mark.parametrize("name", ["cnn1d", "wavevision"])
def test_fit_score_each_objective(name, objective, toy_set, tmp_path):
    kinds = {} if objective == "supervised" else {"objective__anomaly_kinds": KINDS}
    det = _make(name, objective=objective, **kinds)
    assert det.supervised == (objective == "supervised")
    assert det.scorer == ("knn" if objective == "auxiliary" else "probability")
    det.fit(_train(det, toy_set))
    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    if objective == "auxiliary":
        assert np.all(scores >= -1e-9) and np.all(scores <= 2 + 1e-9)  # cosine distances
    else:
        assert np.all((scores > 0) & (scores < 1))  # probabilities
    emb = det.embed(toy_set.test[:2])
    assert emb.shape == (2, det.network_.num_features)
    _same_scores_after_reload(det, toy_set.test, tmp_path)


def test_supervised_cnn1d_learns_the_toy_anomaly(toy_set):
    det = _make("cnn1d", objective="supervised", training__epochs=6, training__batch_size=8,
                training__lr=1e-2)
    scores = det.fit(toy_set.train_labelled).score(toy_set.test)
    labels = toy_set.test_labels
    assert _auc(scores, labels) >= 0.9
    # an untrained network already ranks these clips; training must also separate them
    assert scores[labels == 1].mean() - scores[labels == 0].mean() > 0.05
    # the out-of-fold training scores and the threshold come from normal clips only
    assert det.train_scores_.shape == (len(toy_set.train),)


def test_supervised_labels_are_checked(toy_set):
    det = _make("cnn1d", objective="supervised")
    with pytest.raises(DetectorError, match="both"):
        det.fit(toy_set.train, np.zeros(len(toy_set.train), dtype=int))
    with pytest.raises(DetectorError, match="3 labels for"):
        det.fit(toy_set.train, np.array([0, 1, 0]))
    unlabelled = [c.with_(label=None) for c in toy_set.train]
    with pytest.raises(DetectorError, match="needs labels"):
        det.fit(unlabelled)


def test_auxiliary_with_sections_classifies_them_and_keeps_domain_banks(toy_set):
    clips = _sectioned(toy_set.train)
    det = _make("cnn1d", objective__margin="arcface", scorer__kmeans_source=3).fit(clips)
    assert det.network_spec_["class_names"] == ["toy|00", "toy|01"]
    assert det.scorer_.bank_source_.shape == (3, det.network_.num_features)  # k-means centres
    assert det.scorer_.bank_target_.shape[0] == sum(c.domain == "target" for c in clips)
    assert np.all(np.isfinite(det.score(toy_set.test)))


def test_auxiliary_outlier_exposure_adds_one_class_per_synthetic_kind(toy_set, tmp_path):
    clips = _sectioned(toy_set.train)
    det = _make("cnn1d", objective__aux_synthetic=0.3, objective__synthetic_repeats=2)
    det.fit(clips)
    names = det.network_spec_["class_names"]
    kinds = det.objective_params["anomaly_kinds"].split(",")
    assert names == ["toy|00", "toy|01", *(f"synthetic:{k}" for k in kinds)]
    # the k-NN banks hold the normal training clips only
    assert len(det.scorer_.bank_source_) + len(det.scorer_.bank_target_) == len(clips)
    scores = det.score(toy_set.test)
    assert np.all(np.isfinite(scores)) and np.all(scores >= -1e-9)
    _same_scores_after_reload(det, toy_set.test, tmp_path)


def test_single_auxiliary_class_falls_back_to_synthetic_kinds(toy_set):
    det = _make("cnn1d", objective__anomaly_kinds=KINDS).fit(toy_set.train)
    assert det.network_spec_["class_names"] == ["toy|00", *KINDS.split(",")]


def test_synthetic_objective_with_one_class_per_kind(toy_set, tmp_path):
    det = _make("cnn1d", objective="synthetic", objective__classes="kinds",
                objective__anomaly_kinds=KINDS).fit(toy_set.train)
    assert det.network_spec_["class_names"] == ["normal", *KINDS.split(",")]
    assert det.network_spec_["num_outputs"] == 6
    x = torch.randn(2, det.network_spec_["channels"], det.network_spec_["window"])
    assert det.network_.eval()(x).shape == (2, 6)
    scores = det.score(toy_set.test)
    assert np.all((scores > 0) & (scores < 1))  # 1 - p(normal)
    _same_scores_after_reload(det, toy_set.test, tmp_path)


@pytest.mark.parametrize("name", ["cnn1d", "wavevision"])
def test_synthetic_objective_scored_by_knn_on_embeddings(name, toy_set, tmp_path):
    det = _make(name, objective="synthetic", scorer="knn",
                objective__anomaly_kinds=KINDS).fit(toy_set.train)
    assert len(det.scorer_.bank_source_) + len(det.scorer_.bank_target_) == len(toy_set.train)
    scores = det.score(toy_set.test)
    assert np.all(np.isfinite(scores)) and np.all((scores >= -1e-9) & (scores <= 2 + 1e-9))
    _same_scores_after_reload(det, toy_set.test, tmp_path)


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_window_level_knn_keeps_every_training_window(aggregate, toy_set, tmp_path):
    det = _make("cnn1d", pooling="none", scorer__aggregate=aggregate, window_frames=8)
    det.fit(toy_set.train)
    windows = det.view_items(det.clip_features(toy_set.train), "vectors")
    n_windows = sum(len(w) for w in windows)
    assert n_windows > len(toy_set.train)  # several windows per clip
    assert len(det.scorer_.bank_source_) + len(det.scorer_.bank_target_) == n_windows
    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and np.all(np.isfinite(scores))
    test_windows = det.view_items(det.clip_features(toy_set.test[:1]), "vectors")[0]
    per_window = det.scorer_.score([w[None] for w in test_windows])
    expected = per_window.max() if aggregate == "max" else per_window.mean()
    assert scores[0] == pytest.approx(expected, rel=1e-9)
    _same_scores_after_reload(det, toy_set.test, tmp_path)


def test_wavevision_logmel_input_and_longer_clips_are_windowed(toy_set):
    det = _make("wavevision", encoder__input="logmel", objective="synthetic",
                objective__anomaly_kinds=KINDS, window_frames=20)
    det.fit(toy_set.train)
    assert det.network_spec_["window"] == 20
    assert np.all(np.isfinite(det.score(toy_set.test)))


def test_score_signals_handles_other_rates_and_lengths(toy_set):
    det = _make("cnn1d", objective__anomaly_kinds=KINDS).fit(toy_set.train)
    rng = np.random.default_rng(0)
    scores = det.score_signals(
        [rng.standard_normal(8000).astype(np.float32) * 0.1,
         rng.standard_normal(64000).astype(np.float32) * 0.1],
        8000,
    )
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


# ----------------------------------------------------------------- reconstruction


@pytest.mark.parametrize("scorer", ["knn", "mahalanobis"])
def test_ae_scored_by_a_vector_scorer_on_its_bottleneck(scorer, toy_set, tmp_path):
    det = _make("ae", scorer=scorer).fit(toy_set.train)
    latent = det.encoder_params["latent_dim"]
    assert det.network_.num_features == latent
    if scorer == "knn":
        assert det.scorer_.bank_source_.shape[1] == latent
    else:
        assert det.scorer_.location_.shape == (latent,)
    scores = det.score(toy_set.test)
    assert np.all(np.isfinite(scores))
    # the scorer sees the clips' mean embeddings
    embedded = det.embed(toy_set.test)
    assert embedded.shape == (len(toy_set.test), latent)
    np.testing.assert_allclose(det.scorer_.score([e[None] for e in embedded]), scores,
                               rtol=1e-10)
    _same_scores_after_reload(det, toy_set.test, tmp_path)


def test_ae_views_and_mse_score(ae, toy_set):
    assert ae.views() == ("vectors", "residual")
    residuals = ae.view_items(ae.clip_features(toy_set.test[:2]), "residual")
    expected = [float((r**2).mean()) for r in residuals]
    np.testing.assert_allclose(ae.score(toy_set.test[:2]), expected, rtol=1e-10)
    with pytest.raises(DetectorError, match="no 'residual' view"):
        _make("knn").fit(toy_set.train).view_items(ae.clip_features(toy_set.test[:1]),
                                                   "residual")


def test_selective_mahalanobis_is_the_smaller_domain_distance(toy_set):
    det = _make("ae", scorer="selective_mahalanobis").fit(toy_set.train)
    assert not np.allclose(det.scorer_.precision_source_, det.scorer_.precision_target_)
    items = det.view_items(det.clip_features(toy_set.test[:1]), "residual")
    r = items[0].mean(axis=0)
    expected = min(r @ det.scorer_.precision_source_ @ r, r @ det.scorer_.precision_target_ @ r)
    np.testing.assert_allclose(det.score(toy_set.test[:1])[0], expected, rtol=1e-10)


def test_baseline_selective_mahalanobis_uses_one_block_per_frame(toy_set):
    n_mels = get_detector_class("ae").test_params["frontend_params"]["n_mels"]
    det = _make("ae", scorer="selective_mahalanobis", scorer__variant="baseline",
                scorer__block_size=n_mels).fit(toy_set.train)
    assert det.scorer_.precision_source_.shape == (n_mels, n_mels)
    assert np.all(np.isfinite(det.score(toy_set.test)))
    wrong = _make("ae", scorer="selective_mahalanobis", scorer__variant="baseline",
                  scorer__block_size=n_mels + 1)
    with pytest.raises(DetectorError, match="block_size"):
        wrong.fit(toy_set.train)


def test_missing_target_domain_falls_back_to_the_source_covariance(toy_set):
    source_only = [c for c in toy_set.train if c.domain == "source"]
    det = _make("ae", scorer="selective_mahalanobis").fit(source_only)
    np.testing.assert_array_equal(det.scorer_.precision_source_, det.scorer_.precision_target_)


def test_vae_elbo_is_reproducible_and_differs_from_mse(toy_set, tmp_path):
    ctx = RunContext(device="cpu", log_dir=str(tmp_path))
    det = _make("vae1d", training__epochs=2).fit(toy_set.train, context=ctx)
    assert det.views() == ("vectors", "elbo", "residual")
    assert det.history_["epochs_run"] == 2
    with open(tmp_path / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and {"train_kl", "train_recon"} <= set(rows[0])
    elbo = det.score(toy_set.test)
    np.testing.assert_array_equal(det.score(toy_set.test), elbo)  # seeded latent samples
    np.testing.assert_array_equal(_make("vae1d", training__epochs=2).fit(toy_set.train)
                                  .score(toy_set.test), elbo)
    mse = det.refit_scorer(toy_set.train, scorer="mse").score(toy_set.test)
    assert not np.allclose(elbo, mse)


def test_window_frames_are_capped_at_the_shortest_clip_and_kept_a_multiple(toy_set):
    det = _make("vae1d", window_frames=4096).fit(toy_set.train)
    frames = det.clip_features(toy_set.train[:1])[0].shape[-1]
    window = det.network_spec_["window"]
    assert window <= frames and window % 4 == 0 and window > frames - 4


# ----------------------------------------------------------------- compositions


@pytest.mark.parametrize(("params", "fragment"), [
    ({"scorer": "mse"}, "mse needs the 'residual' view; this composition offers vectors"),
    ({"scorer": "selective_mahalanobis"}, "'residual' view"),
    ({"scorer": "elbo"}, "'elbo' view"),
    ({"encoder": "cnn1d"}, "encoder cnn1d must be trained: choose an objective"),
    ({"objective": "reconstruction"}, "needs an encoder"),
    ({"frontend": "frames", "encoder": "cnn1d", "objective": "auxiliary", "scorer": "knn"},
     "cnn1d reads windows, but front-end frames gives rows"),
    ({"encoder": "ae", "objective": "reconstruction", "scorer": "mse"},
     "ae reads rows, but front-end logmel gives bins_time"),
    ({"frontend": "frames", "encoder": "ae", "objective": "supervised",
      "scorer": "probability"}, "supervised cannot train a rows encoder"),
    ({"encoder": "cnn1d", "objective": "supervised", "scorer": "mse"}, "'residual' view"),
    ({"encoder": "vae1d", "objective": "vae", "scorer": "elbo", "window_frames": 18},
     "multiple of 4"),
    ({"encoder": "cnn1d", "objective": "auxiliary", "scorer": "knn",
      "encoder_params": {"depth": 3}}, "depth"),
    ({"training": {"epochs": 0}}, "training.epochs"),
    ({"pooling": "gem", "pooling_params": {"q": 1}}, "q"),
])
def test_invalid_compositions_are_refused(params, fragment):
    det = ComposedDetector(**params)
    with pytest.raises(DetectorError, match=fragment.replace("(", r"\(")) as info:
        det.validate_params()
    assert "\n" not in str(info.value)


def test_invalid_compositions_are_refused_by_create_detector_and_fit(toy_set):
    with pytest.raises(DetectorError, match="'residual' view"):
        create_detector("knn", scorer="mse")
    det = ComposedDetector(encoder="cnn1d")
    with pytest.raises(DetectorError, match="choose an objective"):
        det.fit(toy_set.train)
    assert not det.is_fitted


def test_views_of_each_composition():
    assert create_detector("knn").views() == ("vectors",)
    assert create_detector("cnn1d").views() == ("vectors",)
    assert create_detector("cnn1d", objective="synthetic").views() == ("vectors", "probability")
    assert create_detector("unet1d-ae").views() == ("vectors", "residual")


def test_classical_embedding_is_the_pooled_front_end(toy_set):
    det = _make("knn").fit(toy_set.train)
    n_mels = det.frontend_params["n_mels"]
    emb = det.embed(toy_set.test)
    assert emb.shape == (len(toy_set.test), 2 * n_mels)  # mean and std of each mel bin
    feats = det.clip_features(toy_set.test[:1])[0]
    np.testing.assert_allclose(emb[0], np.concatenate([feats.mean(axis=1), feats.std(axis=1)]),
                               rtol=1e-6)


# ----------------------------------------------------------------- refit_scorer


def test_refit_scorer_keeps_the_network(toy_set, tmp_path):
    det = _make("ae").fit(toy_set.train)
    weights = {k: v.clone() for k, v in det.network_.state_dict().items()}
    network = det.network_
    mse, threshold = det.score(toy_set.test), det.threshold_
    assert det.refit_scorer(toy_set.train, scorer="selective_mahalanobis") is det
    assert det.scorer == "selective_mahalanobis" and det.scorer_params is None
    assert type(det.scorer_).__name__ == "SelectiveMahalanobisScorer"
    assert det.network_ is network
    state = det.network_.state_dict()
    assert state.keys() == weights.keys()
    assert all(torch.equal(state[k], weights[k]) for k in weights)
    scores = det.score(toy_set.test)
    assert not np.allclose(scores, mse) and det.threshold_ != threshold
    assert det.train_scores_.shape == (len(toy_set.train),)
    _same_scores_after_reload(det, toy_set.test, tmp_path)
    # and back: the same network and scorer give the first scores again
    np.testing.assert_allclose(det.refit_scorer(toy_set.train, scorer="mse")
                               .score(toy_set.test), mse, rtol=1e-12)
    assert det.threshold_ == pytest.approx(threshold)


def test_refit_scorer_of_a_classical_detector(toy_set):
    det = _make("knn").fit(toy_set.train)
    det.refit_scorer(toy_set.train, scorer="gmm", scorer__n_components=2)
    assert type(det.scorer_).__name__ == "GMMScorer"
    reference = _make("knn", scorer="gmm", scorer__n_components=2).fit(toy_set.train)
    np.testing.assert_array_equal(det.score(toy_set.test), reference.score(toy_set.test))


@pytest.mark.parametrize("change", [
    {"encoder__latent_dim": 2},
    {"encoder_params": {"hidden": 4}},
    {"training__epochs": 3},
    {"training": {"epochs": 3}},
    {"frontend_params": {"n_mels": 20}},
    {"objective": "vae"},
    {"window_frames": 8},
    {"epochs": 3},  # a bare key of the training part
    {"n_mels": 20},  # a bare key of the front-end
    {"latent_dim": 2},  # a bare key of the encoder
])
def test_refit_scorer_refuses_network_changes(ae, toy_set, change):
    before = ae.get_params(deep=True)
    with pytest.raises(DetectorError, match="changes the network: retrain"):
        ae.refit_scorer(toy_set.train, **change)
    assert ae.get_params(deep=True) == before


def test_refit_scorer_needs_a_fitted_detector(toy_set):
    with pytest.raises(DetectorError, match="not fitted"):
        _make("ae").refit_scorer(toy_set.train, scorer="knn")


# ----------------------------------------------------------------- resume and determinism


def test_ae_stopped_after_2_of_4_epochs_resumes_to_a_working_detector(toy_set, tmp_path):
    ctx = RunContext(device="cpu", checkpoint_dir=str(tmp_path / "ckpt"),
                     log_dir=str(tmp_path / "log"))
    first = _make("ae", training__epochs=2).fit(toy_set.train, context=ctx)
    assert first.history_["epochs_run"] == 2
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()

    resumed = _make("ae", training__epochs=4).fit(toy_set.train,
                                                  context=ctx.replace(resume=True))
    assert resumed.history_["epochs_run"] == 4
    with open(tmp_path / "log" / "train_log.csv", newline="") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2, 3]
    scores = resumed.score(toy_set.test)
    assert np.all(np.isfinite(scores))
    # the run context is not a hyper-parameter: the saved detector does not resume again
    assert "resume" not in resumed.get_params(deep=True)
    _same_scores_after_reload(resumed, toy_set.test, tmp_path)


@pytest.mark.parametrize("name", ["ae", "vae1d", "unet1d-ae", "cnn1d"])
def test_same_seed_same_scores_other_seed_other_scores(name, toy_set):
    def run(seed):
        return _make(name, seed=seed).fit(toy_set.train).score(toy_set.test)

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ----------------------------------------------------------------- out-of-fold scores


@pytest.mark.parametrize("name", ["gmm", "knn", "mahalanobis"])
def test_training_scores_are_out_of_fold(name, toy_set):
    det = _make(name).fit(toy_set.train)
    in_sample = det.score(toy_set.train)
    out_of_fold = det.training_scores()
    assert out_of_fold.shape == (len(toy_set.train),) and np.isfinite(out_of_fold).all()
    # a model that has not seen a clip finds it less typical than one fitted on it
    assert out_of_fold.mean() > in_sample.mean()


def test_knn_in_sample_distance_is_zero_but_out_of_fold_is_not(toy_set):
    det = _make("knn", scorer__n_neighbors=1).fit(toy_set.train)
    assert np.allclose(det.score(toy_set.train), 0.0, atol=1e-5)
    assert (det.training_scores() > 1e-3).all()


def test_one_training_clip_gives_an_in_sample_score_and_says_so(toy_set, caplog):
    one = toy_set.train[:1]
    with caplog.at_level(logging.WARNING):
        det = _make("mahalanobis").fit(one)
    np.testing.assert_array_equal(det.training_scores(), det.score(one))
    assert "in-sample" in caplog.text


def test_scorers_with_nothing_to_fit_score_training_clips_directly(ae, toy_set):
    np.testing.assert_allclose(ae.training_scores(), ae.score(toy_set.train), rtol=1e-12)


@pytest.fixture(scope="module")
def fan_set(tmp_path_factory):
    """A small synthetic fan set: 16 + 4 normal training clips, 10 normal test clips."""
    from soundwatch.datasets import discover
    from soundwatch.synth import synth_machines

    root = synth_machines(tmp_path_factory.mktemp("fan") / "data", machines="fan",
                          train_source=16, train_target=4, test_per_group=5, seconds=1.0,
                          seed=0, workers=1)
    clips = discover(root)
    train = [c for c in clips if c.split == "train"]
    normal_test = [c for c in clips if c.split == "test" and c.label == 0]
    assert len(train) == 20 and len(normal_test) == 10
    return train, normal_test


def test_cnn1d_decides_most_normal_test_clips_normal(fan_set):
    """Regression (issue 14): cnn1d's gamma threshold was fitted on in-sample 1-NN scores.

    Each training clip found itself in the k-NN bank (score ~1e-16), so the threshold was
    ~0 and every test clip was decided anomalous. Out-of-fold training scores fix that.
    """
    from soundwatch.decisions import Decider

    train, normal_test = fan_set
    det = _make("cnn1d").fit(train)
    flagged = det.predict(normal_test)
    assert flagged.mean() <= 0.3, f"{flagged.sum()} of {len(flagged)} normal clips flagged"

    # the training scores are out of fold: no clip is its own nearest neighbour ...
    assert det.scorer == "knn" and (det.scorer_params or {}).get("n_neighbors", 1) == 1
    assert det.train_scores_.min() > 1e-6
    in_sample = det.scorer_.score(
        det._scorer_inputs(det.clip_features(train), None))
    assert in_sample.max() < 1e-6  # float32 banks: a vector is ~1e-8 from its stored self
    # ... and the old threshold (gamma on those in-sample scores) flags the normal clips
    old = Decider.from_training_scores(in_sample).threshold
    assert (det.score(normal_test) > old).mean() > 0.3


@pytest.mark.parametrize("detector,scorer", [("knn", "knn_domain"), ("knn", "knn_density")])
def test_genrep_scorers_compose_with_any_vectors_detector(toy_set, tmp_path, detector, scorer):
    det = _make(detector, scorer=scorer).fit(toy_set.train)
    assert det.scorer_.name == scorer and np.isfinite(det.train_scores_).all()
    scores = det.score(toy_set.test)
    labels = toy_set.test_labels
    assert scores[labels == 1].mean() > scores[labels == 0].mean()
    det.save(tmp_path / "d")
    np.testing.assert_array_equal(Detector.load(tmp_path / "d").score(toy_set.test), scores)


def test_frame_rows_reach_the_scorer_as_float32_views_and_folds_come_first(toy_set):
    det = _make("knn-frames")
    feats = det.clip_features(toy_set.train[:3])
    rows = det._scorer_inputs(feats, None)
    for r, f in zip(rows, feats, strict=True):
        assert r.dtype == np.float32 and np.shares_memory(r, f)
    det.fit(toy_set.train)
    # out-of-fold scores, then the full scorer: a training clip is in its own bank only there
    assert (det.train_scores_ > 0).all()
    assert np.allclose(det.scorer_.score(rows), 0.0, atol=1e-6)


def test_scoring_in_clip_batches_and_pooling_clip_by_clip_change_nothing(toy_set, monkeypatch):
    from soundwatch.detectors import composed

    det = _make("knn").fit(toy_set.train)
    whole = det.score(toy_set.test)
    items = det.view_items(det.clip_features(toy_set.test), "vectors")
    pooled = [pool(det.pooling, it, **(det.pooling_params or {})) for it in items]  # all first
    streamed = det._scorer_inputs(det.clip_features(toy_set.test), None)
    for a, b in zip(pooled, streamed, strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(composed, "SCORE_BATCH", 3)
    np.testing.assert_array_equal(det.score(toy_set.test), whole)
