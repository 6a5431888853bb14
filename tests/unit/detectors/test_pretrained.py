"""crepe-tiny / crepe-full encoder entries: registry, window embeddings, frozen, bad specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import soundwatch.detectors.pretrained  # noqa: F401  (registers the entries)
from soundwatch.detectors.encoders import ENCODERS, InputSpec, encoder_info, list_encoders
from soundwatch.detectors.networks.crepe import crepe_embeddings
from soundwatch.errors import DetectorError


def test_entries_are_registered_as_frozen():
    assert {"crepe-tiny", "crepe-full"} <= set(list_encoders())
    assert encoder_info("crepe-tiny").trainable is False
    assert encoder_info("crepe-full").trainable is False


def test_window_embedding_is_the_mean_of_its_frames():
    rng = np.random.default_rng(0)
    window = rng.normal(size=4096).astype(np.float32)
    model = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 4096), layer=4, hop=1024)
    with torch.inference_mode():
        emb = model.embed(torch.from_numpy(window)[None, None]).numpy()
    frames = crepe_embeddings(window, 16000, layer=4, hop=1024, center=False)  # 4 frames
    assert emb.shape == (1, 256) == (1, model.num_features)
    np.testing.assert_allclose(emb[0], frames.mean(axis=0), rtol=1e-4, atol=1e-5)
    one = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 1024), layer=4)
    with torch.inference_mode():
        first = one.embed(torch.from_numpy(window[:1024])[None, None]).numpy()
    np.testing.assert_allclose(first[0], frames[0], rtol=1e-4, atol=1e-5)


def test_encoder_stays_frozen_in_training_mode():
    model = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 1024), layer=2)
    model.train()
    assert not model.network.training
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    "spec,params,match",
    [(InputSpec("windows", 128, 64), {}, "waveform"),
     (InputSpec("rows", 640), {}, "waveform"),
     (InputSpec("windows", 1, 512), {}, "at least 1024"),
     (InputSpec("windows", 1, 2048), {"layer": 0}, "layer"),
     (InputSpec("windows", 1, 2048), {"hop": 0}, "hop"),
     (InputSpec("windows", 1, 2048), {"standardise": "yes"}, "standardise"),
     (InputSpec("windows", 1, 2048), {"finetune": -1}, "finetune"),
     (InputSpec("windows", 1, 2048), {"finetune": 3, "layer": 2}, "finetune"),
     (InputSpec("windows", 1, 2048), {"finetune": True}, "finetune")],
)
def test_bad_specs_and_params_are_detector_errors(spec, params, match):
    with pytest.raises(DetectorError, match=match):
        ENCODERS.create("crepe-tiny", spec=spec, **params)


@pytest.mark.parametrize(
    "pooling,scorer",
    [("meanstd", "knn"), ("reldev", "knn_ldn"), ("gem", "knn_smote")],
)
def test_composed_crepe_detector_fits_scores_saves_and_loads(pooling, scorer, toy_set, tmp_path):
    import soundfile as sf
    from sklearn.metrics import roc_auc_score

    from soundwatch.detectors import Detector
    from soundwatch.detectors.composed import ComposedDetector

    det = ComposedDetector(frontend="waveform", encoder="crepe-tiny",
                           encoder_params={"layer": 6}, window_frames=1024, score_hop=2048,
                           pooling=pooling, scorer=scorer)
    det.fit(toy_set.train)
    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and np.isfinite(scores).all()
    assert roc_auc_score(toy_set.test_labels, scores) >= 0.75  # the whine is audible to CREPE
    loaded = Detector.load(det.save(tmp_path / "crepe"))
    np.testing.assert_allclose(loaded.score(toy_set.test), scores, rtol=1e-6)
    signals = [sf.read(c.path, dtype="float32")[0] for c in toy_set.test[:2]]
    np.testing.assert_allclose(det.score_signals(signals, 16000), scores[:2], rtol=1e-4,
                               atol=1e-6)


# ----------------------------------------------------------------- fine-tuning


def test_finetune_decides_whether_the_entry_is_trained():
    for name in ("crepe-tiny", "crepe-full"):
        trains = encoder_info(name).trains
        assert trains({}) is False and trains({"finetune": 0}) is False
        assert trains({"finetune": 2}) is True and trains({"finetune": 6, "layer": 6}) is True
        with pytest.raises(DetectorError, match=f"{name}.finetune"):
            trains({"finetune": 5, "layer": 4})
    assert encoder_info("cnn1d").trains({}) is True


def _composed(**kw):
    from soundwatch.detectors.composed import ComposedDetector

    base = {"frontend": "waveform", "frontend_params": {"sr": 16000}, "encoder": "crepe-tiny",
            "window_frames": 1024, "score_hop": 4096, "pooling": "meanstd", "scorer": "knn"}
    return ComposedDetector(**{**base, **kw})


def test_a_fine_tuned_encoder_needs_an_objective_and_a_frozen_one_refuses_it():
    with pytest.raises(DetectorError, match="must be trained: choose an objective"):
        _composed(encoder_params={"finetune": 1}).validate_params()
    with pytest.raises(DetectorError, match="frozen"):
        _composed(objective="auxiliary").validate_params()
    with pytest.raises(DetectorError, match="finetune"):
        _composed(encoder_params={"finetune": 7}, objective="auxiliary").validate_params()


def test_finetune_zero_is_the_frozen_encoder():
    torch.manual_seed(0)
    frozen = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 2048), layer=5)
    zero = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 2048), layer=5,
                           finetune=0)
    assert not any(p.requires_grad for p in zero.parameters())
    for (ka, a), (kb, b) in zip(frozen.state_dict().items(), zero.state_dict().items(),
                                strict=True):
        assert ka == kb and torch.equal(a, b)


def test_finetune_trains_only_the_top_blocks():
    model = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 2048), layer=5,
                            finetune=2)
    model.train()
    assert not model.network.training  # batch norm keeps its pretrained statistics
    top = {f"network.crepe.blocks.{b}.{part}.{w}" for b in (3, 4)
           for part in ("conv", "norm") for w in ("weight", "bias")}
    assert {n for n, p in model.named_parameters() if p.requires_grad} == top
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x = torch.randn(4, 1, 2048)
    model.embed(x).pow(2).mean().backward()
    opt.step()
    after = model.state_dict()
    assert {k for k in before if not torch.equal(before[k], after[k])} == top


def test_fine_tuned_detector_trains_top_blocks_and_scores_with_knn(toy_set, tmp_path):
    from soundwatch.detectors import Detector
    from soundwatch.detectors.networks.crepe import load_crepe

    clips = [c.with_(section="00" if i % 2 else "01") for i, c in enumerate(toy_set.train)]
    det = _composed(encoder_params={"finetune": 1}, objective="auxiliary",
                    objective_params={"sub_clusters": 2, "mixup": 0.2,
                                      "feature_exchange": True},
                    train_hop=4096, training={"epochs": 1, "batch_size": 8,
                                              "val_fraction": 0.0})
    det.fit(clips)
    assert det.history_["epochs_run"] == 1 and det.network_spec_["class_names"] == [
        "toy|00", "toy|01"]
    pretrained = load_crepe("tiny", 6).state_dict()
    tuned = det.network_.network.crepe.state_dict()
    moved = {k for k in pretrained if not torch.equal(pretrained[k], tuned[k])}
    assert moved and all(k.startswith("blocks.5.") for k in moved)
    assert det.network_.head.sub_clusters == 2 and det.network_.exchange_head is not None
    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and np.isfinite(scores).all()
    loaded = Detector.load(det.save(tmp_path / "ft"))
    np.testing.assert_allclose(loaded.score(toy_set.test), scores, rtol=1e-6)
