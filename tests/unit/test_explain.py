"""soundwatch.explain: time-frequency deviation maps of scored clips."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.explain import (
    Explanation,
    NormalStats,
    explain_clip,
    explanation_path,
    logmel_db,
    plot_explanation,
)

SR = 16000


class LoudnessDetector:
    """Scores a signal by its RMS: enough to check the time resolution."""

    name = "loudness"

    def score_signals(self, signals, sr, context=None):  # the Detector signature
        return np.array([float(np.sqrt(np.mean(np.square(s)))) for s in signals])


class SelfExplaining(LoudnessDetector):
    def explain_signal(self, signal, sr):
        return np.ones((8, 5))


def _tone_burst() -> tuple[np.ndarray, NormalStats]:
    rng = np.random.default_rng(0)
    normal = [0.05 * rng.standard_normal(2 * SR).astype(np.float32) for _ in range(4)]
    frames = np.concatenate([logmel_db(x, SR) for x in normal], axis=1)
    stats = NormalStats(frames.mean(axis=1), frames.std(axis=1), SR, len(normal))
    clip = 0.05 * rng.standard_normal(2 * SR).astype(np.float32)
    t = np.arange(SR // 2) / SR
    clip[SR:SR + SR // 2] += 0.5 * np.sin(2 * np.pi * 3000 * t).astype(np.float32)
    return clip, stats


def test_deviation_is_where_the_tone_is_in_time_and_frequency():
    clip, stats = _tone_burst()
    ex = explain_clip(LoudnessDetector(), clip, SR, stats, score=2.0, threshold=1.0)
    assert ex.source == "logmel-zscore"
    assert ex.deviation.shape == ex.logmel.shape
    assert ex.window_scores.size >= 4
    loudest = (ex.window_starts[np.argmax(ex.window_scores)]
               + ex.window_ends[np.argmax(ex.window_scores)]) / 2
    assert 0.9 <= loudest <= 1.6, "the loudest window covers the burst (1.0 to 1.5 s)"
    when, freq = ex.top_band()
    assert 1.0 <= when <= 1.5
    assert 2400 <= freq <= 3600, f"deviation at {freq:.0f} Hz, the tone is at 3000 Hz"


def test_a_detector_map_replaces_the_logmel_one():
    clip, _ = _tone_burst()
    ex = explain_clip(SelfExplaining(), clip, SR, None)
    assert ex.source == "detector" and ex.deviation.shape == (8, 5)


def test_logmel_explanation_needs_statistics():
    from soundwatch.errors import DetectorError

    with pytest.raises(DetectorError, match="normal statistics"):
        explain_clip(LoudnessDetector(), np.zeros(SR, np.float32), SR, None)


def test_plot_has_axes_and_is_a_png(tmp_path):
    clip, stats = _tone_burst()
    ex = explain_clip(LoudnessDetector(), clip, SR, stats, score=2.0, threshold=0.1)
    assert isinstance(ex, Explanation)
    path = plot_explanation(ex, tmp_path / "x.png", title="fan: x.wav")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(path) as image:
        assert image.size[0] > 600 and image.size[1] > 400


def test_explanation_path_is_safe_and_per_machine(tmp_path):
    path = explanation_path(tmp_path, "fan", "/data/some dir/Über clip.wav")
    assert path.parent == tmp_path and path.name == "fan___ber_clip.png"
