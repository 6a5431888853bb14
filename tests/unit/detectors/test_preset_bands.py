"""The ``mahalanobis-hf`` preset: log-mel statistics of the bands above 1.5 kHz only."""

from __future__ import annotations

import numpy as np

from soundwatch.detectors import create_detector, list_detectors

SR = 16000


def _normal_clip(seed: int = 7) -> np.ndarray:
    """Like the toy set's normal source clips: 440 Hz + 880 Hz tones over weak noise."""
    t = np.arange(SR) / SR
    x = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 880.0 * t)
    return (x + 0.05 * np.random.default_rng(seed).standard_normal(SR)).astype(np.float32)


def _shift(det, base: np.ndarray, tone_hz: float, level: float = 0.3) -> float:
    """How much adding a steady tone moves the score of ``base``."""
    t = np.arange(len(base)) / SR
    moved = (base + level * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
    before, after = det.score_signals([base, moved], SR)
    return float(after - before)


def test_registered_with_the_bands_above_1_5_khz():
    assert "mahalanobis-hf" in list_detectors()
    det = create_detector("mahalanobis-hf")
    assert det.frontend == "logmel"
    assert det.frontend_params == {"fmin": 1500.0, "n_mels": 64}
    assert (det.pooling, det.scorer) == ("meanstd", "mahalanobis")
    det.make_frontend()  # valid front-end parameters


def test_a_low_tone_is_ignored_a_high_tone_is_not(toy_set):
    base = _normal_clip()
    hf = create_detector("mahalanobis-hf", frontend__n_mels=32).fit(toy_set.train)
    full = create_detector("mahalanobis", frontend__n_mels=32).fit(toy_set.train)
    # below 1.5 kHz (e.g. another factory's background) the preset does not look ...
    low_hf, low_full = _shift(hf, base, 200.0), _shift(full, base, 200.0)
    # ... above it, a whine is an anomaly for both
    high_hf = _shift(hf, base, 3100.0)
    assert high_hf > 0
    assert abs(low_hf) < 0.1 * high_hf
    assert low_full > 10 * abs(low_hf)  # the full-band reference does react to the low tone
