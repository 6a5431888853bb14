"""Classifier objectives (supervised, synthetic, auxiliary): plans, data, losses and views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundwatch.detectors.encoders import ENCODERS, InputSpec
from soundwatch.detectors.objectives import (
    ANOMALY_KINDS,
    OBJECTIVES,
    TrainInput,
    create_objective,
)
from soundwatch.detectors.objectives.classification import SyntheticClips
from soundwatch.errors import DetectorError

KINDS = "noise,tone,notch"
WINDOW = 8


@pytest.fixture(scope="module")
def frontend():
    from soundwatch.features import create_frontend

    return create_frontend("logmel", n_mels=16, n_fft=512, hop_length=256).eval()


@pytest.fixture(scope="module")
def arrays(toy_set, frontend):
    from soundwatch.features import extract

    return [np.asarray(a, dtype=np.float32) for a in extract(toy_set.train_labelled, frontend,
                                                             sr=frontend.sr)]


def _input(clips, arrays, plan, frontend, val_idx=()):
    train_idx = [i for i in range(len(clips)) if i not in val_idx]
    return TrainInput(arrays=arrays, clips=clips, plan=plan, train_idx=train_idx,
                      val_idx=list(val_idx), window=WINDOW, hop=WINDOW, frontend=frontend,
                      seed=3)


def _model(num_outputs=1, channels=16):
    torch.manual_seed(0)
    return ENCODERS.create("cnn1d", spec=InputSpec("windows", channels, WINDOW, num_outputs),
                           preset="tiny")


def test_registered_attributes():
    sup, syn, aux = (OBJECTIVES.get(n) for n in ("supervised", "synthetic", "auxiliary"))
    assert sup.supervised and not syn.supervised and not aux.supervised
    assert sup.views == ("probability",) and syn.views == ("probability",)
    assert aux.views == () and aux.default_scorer == "knn"
    assert sup.default_scorer == syn.default_scorer == "probability"


# ----------------------------------------------------------------- supervised


def test_supervised_plan_needs_both_classes():
    objective = create_objective("supervised")
    plan = objective.plan([], np.array([0, 1, 1, 0]), 16000)
    assert plan.targets.tolist() == [0, 1, 1, 0] and plan.num_outputs == 1
    assert plan.class_names == ["normal", "anomaly"]
    with pytest.raises(DetectorError, match="both classes"):
        objective.plan([], np.zeros(4), 16000)


def test_supervised_data_labels_every_window_with_its_clip_label(toy_set, arrays, frontend):
    clips = toy_set.train_labelled
    labels = np.array([c.label for c in clips])
    objective = create_objective("supervised")
    plan = objective.plan(clips, labels, frontend.sr)
    train, val, overrides = objective.datasets(_input(clips, arrays, plan, frontend,
                                                      val_idx=[0, len(clips) - 1]))
    assert overrides == {}
    x, y = train.get_batch(np.arange(len(train)))
    assert x.shape[1:] == (16, WINDOW)
    train_idx = list(range(1, len(clips) - 1))
    np.testing.assert_array_equal(y.numpy(), labels[train_idx][train.owners])
    assert set(val.get_batch(np.arange(len(val)))[1].tolist()) == {0, 1}
    model = _model()
    loss = objective.loss()(model, (x[:4], y[:4]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    probability = objective.view_fn("probability", model.eval(), {"num_outputs": 1}, 0, "cpu")
    p = probability(x[:5])
    assert p.shape == (5, 1) and torch.all((p > 0) & (p < 1))
    with pytest.raises(NotImplementedError):
        objective.view_fn("residual", model, {}, 0, "cpu")


# ----------------------------------------------------------------- synthetic


def test_synthetic_plans():
    binary = create_objective("synthetic").plan([], None, 16000)
    assert binary.num_outputs == 1 and binary.class_names == [] and binary.targets is None
    kinds = create_objective("synthetic", classes="kinds", anomaly_kinds=KINDS).plan([], None,
                                                                                     16000)
    assert kinds.class_names == ["normal", "noise", "tone", "notch"] and kinds.num_outputs == 4
    all_kinds = create_objective("synthetic", classes="kinds").plan([], None, 16000)
    assert all_kinds.class_names == ["normal", *ANOMALY_KINDS]


@pytest.mark.parametrize("classes", ["binary", "kinds"])
def test_synthetic_data_makes_reproducible_anomalies(toy_set, arrays, frontend, classes):
    clips = toy_set.train
    feats = arrays[: len(clips)]
    objective = create_objective("synthetic", classes=classes, anomaly_kinds=KINDS, ratio=0.5,
                                 synthetic_repeats=2)
    plan = objective.plan(clips, None, frontend.sr)
    train, val, overrides = objective.datasets(_input(clips, feats, plan, frontend,
                                                      val_idx=[0, 1]))
    assert isinstance(train, SyntheticClips) and len(train) == 2 * (len(clips) - 2)
    assert len(val) == 2 * 2 and overrides == {}
    items = [train[i] for i in range(len(train))]
    labels = {label for _, label in items}
    assert all(x.shape == (16, WINDOW) for x, _ in items)
    allowed = {0, 1} if classes == "binary" else {0, 1, 2, 3}
    assert labels <= allowed and 0 in labels and len(labels) > 1
    # the same seed gives the same anomalies in the same order; the next epoch new ones
    again = objective.datasets(_input(clips, feats, plan, frontend, val_idx=[0, 1]))[0]
    for i in range(4):
        x, label = again[i]
        assert label == items[i][1]
        torch.testing.assert_close(x, items[i][0])
    second = [train[i] for i in range(len(train))]
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(items, second, strict=True))
    # the validation set is fixed
    torch.testing.assert_close(val[0][0], val[0][0])
    # without validation clips the engine is told not to split items
    assert objective.datasets(_input(clips, feats, plan, frontend))[2] == {"val_fraction": 0.0}


def test_synthetic_kinds_probability_is_one_minus_p_normal():
    model = _model(num_outputs=4).eval()
    x = torch.randn(3, 16, WINDOW)
    objective = create_objective("synthetic", classes="kinds", anomaly_kinds=KINDS)
    p = objective.view_fn("probability", model, {"num_outputs": 4}, 0, "cpu")(x)
    expected = 1.0 - torch.softmax(model(x), dim=1)[:, :1]
    torch.testing.assert_close(p, expected)
    assert objective.loss()(model, (x, torch.tensor([0, 2, 3]))).ndim == 0


# ----------------------------------------------------------------- auxiliary


def _sectioned(clips):
    return [c.with_(section="00" if i % 2 else "01") for i, c in enumerate(clips)]


def test_auxiliary_plan_classes_from_clip_fields(toy_set):
    clips = _sectioned(toy_set.train)
    plan = create_objective("auxiliary").plan(clips, None, 16000)
    assert plan.class_names == ["toy|00", "toy|01"]
    assert plan.targets.tolist() == [1 - i % 2 for i in range(len(clips))]
    assert plan.extra == {"single": False, "exposure": False, "n_base": 1}
    by_domain = create_objective("auxiliary", aux_fields="domain").plan(clips, None, 16000)
    assert by_domain.class_names == ["source", "target"]


def test_auxiliary_single_class_falls_back_to_anomaly_kinds(toy_set):
    plan = create_objective("auxiliary", anomaly_kinds=KINDS).plan(toy_set.train, None, 16000)
    assert plan.class_names == ["toy|00", "noise", "tone", "notch"]
    assert plan.extra["single"] and not plan.extra["exposure"]


def test_auxiliary_outlier_exposure_adds_one_class_per_kind(toy_set):
    clips = _sectioned(toy_set.train)
    objective = create_objective("auxiliary", aux_synthetic=0.3, anomaly_kinds=KINDS)
    plan = objective.plan(clips, None, 16000)
    assert plan.class_names == ["toy|00", "toy|01", "synthetic:noise", "synthetic:tone",
                                "synthetic:notch"]
    assert plan.extra == {"single": False, "exposure": True, "n_base": 2}


@pytest.mark.parametrize("margin", ["adacos", "arcface"])
def test_auxiliary_head_data_and_loss(toy_set, arrays, frontend, margin):
    from soundwatch.detectors.networks.margin import MARGIN_HEADS

    clips = _sectioned(toy_set.train)
    objective = create_objective("auxiliary", margin=margin)
    plan = objective.plan(clips, None, frontend.sr)
    model = _model()
    objective.attach_head(model, {"class_names": plan.class_names})
    assert isinstance(model.head, MARGIN_HEADS[margin]) and model.head.num_classes == 2
    train, _, _ = objective.datasets(_input(clips, arrays[: len(clips)], plan, frontend))
    x, y = train.get_batch(np.arange(len(train)))
    np.testing.assert_array_equal(y.numpy(), plan.targets[train.owners])
    loss = objective.loss()(model, (x[:6], y[:6]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    with pytest.raises(NotImplementedError):
        objective.view_fn("probability", model, {}, 0, "cpu")


def test_auxiliary_exposure_data_labels_anomalies_after_the_base_classes(toy_set, arrays,
                                                                        frontend):
    clips = _sectioned(toy_set.train)
    objective = create_objective("auxiliary", aux_synthetic=0.5, anomaly_kinds=KINDS)
    plan = objective.plan(clips, None, frontend.sr)
    train, _, _ = objective.datasets(_input(clips, arrays[: len(clips)], plan, frontend))
    labels = {train[i][1] for i in range(len(train))}
    assert labels <= set(range(5)) and labels & {2, 3, 4} and labels & {0, 1}


@pytest.mark.parametrize(("name", "params"), [
    ("auxiliary", {"margin": "cosface"}),
    ("auxiliary", {"aux_fields": "colour"}),
    ("auxiliary", {"aux_fields": ""}),
    ("auxiliary", {"aux_synthetic": 1.0}),
    ("auxiliary", {"anomaly_kinds": "tone,explosion"}),
    ("auxiliary", {"snr_min_db": 10.0, "snr_max_db": 0.0}),
    ("auxiliary", {"synthetic_repeats": 0}),
    ("synthetic", {"classes": "many"}),
    ("synthetic", {"ratio": 0.0}),
    ("synthetic", {"ratio": 1.0}),
    ("synthetic", {"anomaly_kinds": ""}),
    ("supervised", {"ratio": 0.5}),
])
def test_invalid_params_are_refused(name, params):
    with pytest.raises(DetectorError, match=f"objective {name}"):
        create_objective(name, **params)
