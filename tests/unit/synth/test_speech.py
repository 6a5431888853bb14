"""Synthesised speech as interference (espeak-ng) and the ``speech`` fake-anomaly kind."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors.objectives.anomalies import (
    ANOMALY_KINDS,
    EXTRA_ANOMALY_KINDS,
    SyntheticAnomalies,
)
from soundwatch.errors import ConfigError
from soundwatch.synth import speech

needs_espeak = pytest.mark.skipif(
    not speech.espeak_available(),
    reason="espeak-ng is not installed (apt-get install espeak-ng; .ci/run installs it)")
SR = 16000


@needs_espeak
def test_speech_is_speech_at_the_asked_snr():
    y = speech.synthesize_speech("check the pressure", SR)
    assert y.dtype == np.float32 and 0.3 * SR < y.size < 3 * SR and np.abs(y).max() > 0.05
    x = 0.1 * np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    mixed = speech.add_speech(x, 5.0, SR, np.random.default_rng(1))
    added = mixed - x
    assert 10 * np.log10(np.sum(x ** 2) / np.sum(added ** 2)) == pytest.approx(5.0, abs=0.05)
    # speech energy sits in the voice band, unlike the white test signal
    spec = np.abs(np.fft.rfft(added)) ** 2
    f = np.fft.rfftfreq(added.size, 1 / SR)
    assert spec[(f > 100) & (f < 4000)].sum() > 0.8 * spec.sum()
    again = speech.add_speech(x, 5.0, SR, np.random.default_rng(1))
    assert np.array_equal(mixed, again)


@needs_espeak
def test_speech_fake_anomaly_kind():
    gen = SyntheticAnomalies(kinds=("speech",), snr_db=(0.0, 0.0))
    x = 0.05 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    y, kind = gen(x, np.random.default_rng(2))
    assert kind == "speech" and y.shape == x.shape
    assert 10 * np.log10(np.sum(x ** 2) / np.sum((y - x) ** 2)) == pytest.approx(0.0, abs=0.05)


def test_speech_is_not_in_the_default_draw():
    assert "speech" in EXTRA_ANOMALY_KINDS and "speech" not in ANOMALY_KINDS
    assert SyntheticAnomalies().kinds == ANOMALY_KINDS
    with pytest.raises(ConfigError, match="unknown kind"):
        SyntheticAnomalies(kinds=("speach",))


def test_missing_espeak_is_a_one_line_config_error(monkeypatch, tmp_path):
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    speech._espeak.cache_clear()
    with pytest.raises(ConfigError, match="apt-get install espeak-ng") as info:
        speech.synthesize_speech("hello", SR)
    assert "\n" not in str(info.value)
    from soundwatch.synth.recent import synth_dcase2026

    with pytest.raises(ConfigError, match="--speech-snr-db: needs espeak-ng"):
        synth_dcase2026(tmp_path / "x", "fan", 1, 0, 0, speech_snr_db=0.0, seconds=0.1)
