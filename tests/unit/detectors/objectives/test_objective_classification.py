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
    ("auxiliary", {"sub_clusters": 0}),
    ("auxiliary", {"mixup": -0.1}),
    ("auxiliary", {"feature_exchange": "yes"}),
    ("synthetic", {"classes": "many"}),
    ("synthetic", {"ratio": 0.0}),
    ("synthetic", {"ratio": 1.0}),
    ("synthetic", {"anomaly_kinds": ""}),
    ("supervised", {"ratio": 0.5}),
])
def test_invalid_params_are_refused(name, params):
    with pytest.raises(DetectorError, match=f"objective {name}"):
        create_objective(name, **params)


# ----------------------------------------------------------------- sub-clusters, mixup, FeatEx


def _aux_model(objective, clips, frontend):
    plan = objective.plan(clips, None, frontend.sr)
    model = _model()
    objective.attach_head(model, {"class_names": plan.class_names})
    return model, plan


def test_auxiliary_sub_clusters_reach_the_head(toy_set, frontend):
    objective = create_objective("auxiliary", margin="arcface", sub_clusters=3)
    model, _ = _aux_model(objective, _sectioned(toy_set.train), frontend)
    assert model.head.sub_clusters == 3 and model.head.weight.shape[0] == 6
    assert not hasattr(model, "exchange_head")
    from soundwatch.detectors.objectives.classification import margin_loss

    assert objective.loss() is margin_loss  # no option: the plain loss


def test_exchange_features_swaps_second_halves_and_labels_the_pairs():
    from soundwatch.detectors.objectives.classification import exchange_features

    emb = torch.arange(24, dtype=torch.float32).view(4, 6)
    labels = torch.tensor([0, 1, 1, 0])
    gen = torch.Generator().manual_seed(0)
    swap = torch.rand(4, generator=torch.Generator().manual_seed(0)) < 0.5
    out, target = exchange_features(emb, labels, 2, generator=gen)
    assert out.shape == (4, 6) and target.shape == (4, 6)
    assert swap.any() and not swap.all()  # this seed swaps some items only
    for i in range(4):
        j = 3 - i
        if swap[i]:
            torch.testing.assert_close(out[i], torch.cat([emb[i, :3], emb[j, 3:]]))
            expected = torch.zeros(6)
            expected[2 + labels[i]] += 0.5
            expected[4 + labels[j]] += 0.5
        else:
            torch.testing.assert_close(out[i], emb[i])
            expected = torch.zeros(6)
            expected[labels[i]] = 1.0
        torch.testing.assert_close(target[i], expected)
    torch.testing.assert_close(target.sum(dim=1), torch.ones(4))


@pytest.mark.parametrize(("params", "terms"), [
    ({"mixup": 0.4}, {"loss", "classification"}),
    ({"feature_exchange": True}, {"loss", "classification", "exchange"}),
    ({"mixup": 1.0, "feature_exchange": True, "sub_clusters": 2},
     {"loss", "classification", "exchange"}),
])
def test_auxiliary_mixup_and_feature_exchange_losses(toy_set, arrays, frontend, params, terms):
    from soundwatch.detectors.objectives.classification import AuxiliaryLoss, margin_loss

    clips = _sectioned(toy_set.train)
    objective = create_objective("auxiliary", **params)
    model, plan = _aux_model(objective, clips, frontend)
    if params.get("feature_exchange"):
        assert model.exchange_head.num_classes == 3 * model.head.num_classes
    fn = objective.loss()
    assert isinstance(fn, AuxiliaryLoss)
    train, _, _ = objective.datasets(_input(clips, arrays[: len(clips)], plan, frontend))
    x, y = train.get_batch(np.arange(8))
    model.train()
    torch.manual_seed(0)
    out = fn(model, (x, y))
    assert set(out) == terms and all(torch.isfinite(v) for v in out.values())
    if "exchange" in out:
        torch.testing.assert_close(out["loss"], out["classification"] + out["exchange"])
    out["loss"].backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    if "exchange" in out:
        assert model.exchange_head.weight.grad.abs().sum() > 0
    trained = [p for n, p in model.named_parameters() if n.startswith("network.")]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    # the options are training-time only: in evaluation it is the plain margin loss
    model.eval()
    torch.testing.assert_close(fn(model, (x, y)), margin_loss(model, (x, y)))


def test_mixup_mixes_inputs_and_labels():
    from soundwatch.detectors.objectives.classification import AuxiliaryLoss

    seen = {}

    class Head(torch.nn.Module):
        num_classes = 2

        def forward(self, emb, target):
            seen["target"] = target
            return torch.zeros(len(emb), 2, requires_grad=True)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = Head()

        def embed(self, x):
            seen["x"] = x
            return x.reshape(len(x), -1)

    x = torch.stack([torch.zeros(2, WINDOW), torch.ones(2, WINDOW)] * 2)
    y = torch.tensor([0, 1, 0, 1])
    torch.manual_seed(0)
    AuxiliaryLoss(mixup=0.5)(Model().train(), (x, y))
    lam = seen["x"][:, 0, 0]  # share of the all-ones input in each mixed item
    assert seen["target"].shape == (4, 2)
    torch.testing.assert_close(seen["target"][:, 1], lam)  # label 1 <=> the all-ones input
    torch.testing.assert_close(seen["target"].sum(dim=1), torch.ones(4))
    assert ((lam > 0) & (lam < 1)).any()
