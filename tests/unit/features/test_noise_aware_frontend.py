"""Noise-aware options as front-end parameters of composed detectors (fit, score, cache, errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundwatch.datasets.clip import Clip
from soundwatch.detectors.registry import create_detector
from soundwatch.errors import AudioError, ConfigError, DetectorError
from soundwatch.features import FeatureCache, create_frontend, extract
from soundwatch.features.noise_aware import (
    REFERENCES,
    TWO_CHANNEL_REFERENCES,
    NoiseAwareFrontEnd,
    export_reason,
    noise_training,
)
from soundwatch.training.context import RunContext

SR = 16000
FAST = {"n_mels": 16, "n_fft": 512, "hop_length": 256}


def _two_channel(seed: int, anomalous: bool = False) -> np.ndarray:
    """Near: a tone in shared noise; far: the same noise, the tone 12 dB weaker."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR // 2) / SR
    freq = 900.0 if anomalous else 600.0
    tone = 0.1 * np.sin(2 * np.pi * (freq + 5 * seed) * t)
    noise = 0.2 * np.convolve(rng.normal(size=t.size), np.ones(3) / 3, mode="same")
    near = tone + noise
    far = 0.25 * tone + 0.9 * noise + 0.01 * rng.normal(size=t.size)
    return np.stack([near, far], axis=1).astype(np.float32)


def _clips(root: Path, n_train: int = 6, n_test: int = 2, channels: int = 2) -> tuple[
        list[Clip], list[Clip]]:
    """Two-channel (or mono) DCASE-named clips under ``root/fan/{train,test}``."""
    train, test = [], []
    for split, n in (("train", n_train), ("test", n_test)):
        folder = root / "fan" / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = int(split == "test" and i % 2 == 1)
            y = _two_channel(i + (100 if split == "test" else 0), anomalous=bool(label))
            if channels == 1:
                y = y[:, 0]
            kind = "anomaly" if label else "normal"
            path = folder / f"section_00_source_{split}_{kind}_{i:04d}_a_1.wav"
            sf.write(path, y, SR, subtype="FLOAT")
            (train if split == "train" else test).append(
                Clip(path, "fan", split=split, label=label, section="00", domain="source",
                     layout="dcase2026-dev" if channels == 2 else "dcase-dev"))
    return train, test


def _detector(reference: str, **extra: object) -> object:
    det = create_detector("mahalanobis")
    return det.set_params(frontend_params={**FAST, "reference": reference, **extra})


@pytest.fixture(scope="module")
def two_channel_set(tmp_path_factory):
    """Training and test clips, and the near channel's scores (shared by the options)."""
    train, test = _clips(tmp_path_factory.mktemp("set"))
    return train, test, _detector("none").fit(train).score(test)


@pytest.mark.parametrize("reference", [*TWO_CHANNEL_REFERENCES, "gate"])
def test_each_option_fits_and_scores_a_composed_detector(two_channel_set, reference):
    if reference.startswith("gate"):
        pytest.importorskip("noisereduce", reason="needs soundwatch[noise]")
    train, test, near_only = two_channel_set
    det = _detector(reference).fit(train, context=RunContext())
    scores = det.score(test)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert not np.allclose(scores, near_only)  # the option changed what the scorer saw
    feats = det.clip_features(test[:1])[0]
    assert feats.shape[0] == (32 if reference == "near+far" else 16)


def test_near_plus_far_puts_rows_side_by_side_for_a_frame_detector(tmp_path):
    train, test = _clips(tmp_path, n_train=3)
    fe = create_frontend("frames", **FAST, n_frames=2, reference="near+far")
    pair = np.ascontiguousarray(_two_channel(100).T)
    near, far = (create_frontend("frames", **FAST, n_frames=2)(pair[i][None].copy())
                 for i in (0, 1))
    both = fe(pair[None].copy())
    np.testing.assert_allclose(both.numpy(), np.concatenate([near, far], axis=-1), atol=1e-5)
    assert tuple(both.shape[1:]) == fe.output_shape(pair.shape[-1])
    det = create_detector("knn-frames").set_params(
        frontend_params={**FAST, "reference": "near+far"})
    assert np.isfinite(det.fit(train).score(test)).all()


def test_cache_keys_separate_options_and_the_plain_front_end(tmp_path):
    train, _ = _clips(tmp_path, n_train=2, n_test=0)
    cache = FeatureCache(tmp_path / "cache")
    plain = create_frontend("logmel", **FAST)
    folders = set()
    for reference in ("none", "wiener", "subtract", "near-far"):
        fe = create_frontend("logmel", **FAST, reference=reference)
        extract(train, fe, cache=cache)
        folders.add(cache.entry_path(train[0].path, fe, SR, 0).parent.name)
    assert len(folders) == 4
    assert f"{plain.name}-{plain.config_hash()[:16]}" in folders  # none: no wrapper, same key
    wiener = create_frontend("logmel", **FAST, reference="wiener")
    hits = cache.hits
    again = extract(train, wiener, cache=cache)
    assert cache.hits == hits + 2
    np.testing.assert_array_equal(again[0], extract(train[:1], wiener)[0])
    # a noise reference is part of the key
    noisy = NoiseAwareFrontEnd(plain, wiener.noise_config)
    assert noisy.with_noise(np.ones(8)).config_hash() != noisy.config_hash()


def test_one_channel_clip_with_a_two_channel_option_is_one_line_naming_the_file(tmp_path):
    train, _ = _clips(tmp_path, n_train=2, n_test=0, channels=1)
    with pytest.raises(AudioError) as info:
        _detector("wiener").fit(train)
    message = str(info.value)
    assert train[0].path.name in message and "two channels" in message
    assert "\n" not in message
    # options that read one channel work on it
    pytest.importorskip("noisereduce", reason="needs soundwatch[noise]")
    assert np.isfinite(_detector("gate").fit(train).train_scores_).all()


def test_near_channel_follows_the_run_channel_and_far_is_the_other(tmp_path):
    train, _ = _clips(tmp_path, n_train=1, n_test=0)
    fe = create_frontend("logmel", **FAST, reference="near-far")
    straight = fe.load_clip(train[0].path, SR, 0)
    swapped = fe.load_clip(train[0].path, SR, 1)
    np.testing.assert_array_equal(straight, swapped[::-1])
    with pytest.raises(ConfigError, match="near channel's index"):
        fe.load_clip(train[0].path, SR, "mean")


def test_in_memory_two_channel_signal_scores_as_the_file(two_channel_set):
    train, test, _ = two_channel_set
    det = _detector("wiener").fit(train)
    from_file = det.score(test)
    signals = [sf.read(c.path, dtype="float32")[0] for c in test]  # [T, 2]
    np.testing.assert_allclose(det.score_signals(signals, SR), from_file, rtol=1e-5)
    with pytest.raises(AudioError, match="two channels"):
        det.score_signals([signals[0][:, 0]], SR)


def test_bad_options_are_refused_before_training():
    with pytest.raises(DetectorError, match="reference"):
        _detector("magic").validate_params()
    with pytest.raises(DetectorError, match="near-far subtracts log-mels"):
        create_detector("mahalanobis").set_params(
            frontend="stft", frontend_params={"reference": "near-far"}).validate_params()
    assert set(REFERENCES) >= {"none", "wiener", "subtract-noise", "gate-noise"}


def test_export_reason_names_the_option():
    assert export_reason({"reference": "none", "noise_augment": 2}) is None
    assert "reference=wiener" in export_reason({"reference": "wiener"})
    pytest.importorskip("onnx", reason="needs soundwatch[export]")
    from soundwatch.export.frontend import not_exportable_reason

    assert "reference=gate-far" in not_exportable_reason("logmel", {"reference": "gate-far"})


# --------------------------------------------------------------------------- DCASE 2025


def _with_noise_clips(root: Path, train: list[Clip], count: int = 2) -> list[Path]:
    folder = root / "fan" / "supplemental"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        path = folder / f"section_00_noise_{i:04d}_.wav"
        sf.write(path, (0.2 * rng.normal(size=SR // 2)).astype(np.float32), SR)
        paths.append(path)
    return paths


def test_noise_augmentation_is_seeded_and_uses_the_noise_clips(tmp_path):
    train, _ = _clips(tmp_path, n_train=3, n_test=0, channels=1)
    paths = _with_noise_clips(tmp_path, train)
    setup = noise_training({"noise_augment": 2}, train, SR)
    assert sorted(Path(c.path).name for c in setup.noise_clips) == sorted(p.name for p in paths)
    fe = create_frontend("logmel", **FAST)
    a, index = setup.augmented(fe, 0, seed=3)
    b, _ = setup.augmented(fe, 0, seed=3)
    c, _ = setup.augmented(fe, 0, seed=4)
    assert index == [0, 0, 1, 1, 2, 2] and len(a) == 6
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])
    clean = extract(train[:1], fe)[0]
    assert not np.allclose(a[0], clean)  # noise was mixed in
    det = create_detector("mahalanobis").set_params(
        frontend_params={**FAST, "noise_augment": 2})
    first = det.fit(train).scorer_.state()
    second = det.fit(train).scorer_.state()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert len(det.train_scores_) == 3  # out-of-fold scores: the training clips only


def test_noise_clip_reference_is_kept_saved_and_loaded(tmp_path):
    train, _ = _clips(tmp_path, n_train=3, n_test=0, channels=1)
    _with_noise_clips(tmp_path, train)
    det = create_detector("mahalanobis").set_params(
        frontend_params={**FAST, "reference": "subtract-noise"}).fit(train)
    assert det.noise_reference_.size == SR  # both 0.5 s noise clips
    det.save(tmp_path / "det")
    back = type(det).load(tmp_path / "det")
    np.testing.assert_array_equal(back.noise_reference_, det.noise_reference_)
    np.testing.assert_allclose(back.score(train), det.score(train))


def test_noise_options_without_noise_clips_say_where_they_looked(tmp_path):
    train, _ = _clips(tmp_path, n_train=2, n_test=0, channels=1)
    with pytest.raises(ConfigError, match="noise-only clips") as info:
        create_detector("mahalanobis").set_params(
            frontend_params={**FAST, "reference": "gate-noise"}).fit(train)
    assert "supplemental" in str(info.value)
