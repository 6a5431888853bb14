"""Sensor health checks: silent, clipped, dead channel, DC offset, wrong rate."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from soundwatch.sensor import check_file, check_signal

SR = 16000


def _noise(amp: float = 0.1, channels: int = 1, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = amp * rng.standard_normal((int(SR * seconds), channels))
    return x.astype(np.float32)


def test_a_normal_recording_is_ok():
    check = check_signal(_noise(), SR, (SR,))
    assert check.ok and check.status == "ok" and check.reason == ""
    assert check_signal(_noise(0.2, channels=8), SR).ok
    # loud but not clipped: one sample at full scale is not clipping
    x = _noise(0.2)
    x[100] = 1.0
    assert check_signal(x, SR).ok


@pytest.mark.parametrize("make,reason", [
    (lambda: np.zeros((SR, 1), np.float32), "silent"),
    (lambda: np.full((SR, 1), 1e-6, np.float32), "silent"),
    (lambda: np.clip(_noise(1.0), -1, 1), "clipped"),
    (lambda: _noise(0.01) + 0.3, "DC offset (+0.30"),
])
def test_problems_are_named(make, reason):
    check = check_signal(make(), SR)
    assert check.status == "sensor" and reason in check.reason


def test_dead_channel_among_live_ones():
    x = _noise(0.1, channels=4)
    x[:, 2] = 0.0
    check = check_signal(x, SR, channel=0)
    assert check.status == "sensor" and check.reason == "dead channel 2 of 4"
    x[:, 2] = 0.25  # constant: a stuck channel
    assert "dead channel 2 of 4" in check_signal(x, SR).reason
    # the channel scoring uses is judged for silence; mean mixes all
    x = _noise(0.1, channels=2)
    x[:, 1] = 0.0
    assert "silent" in check_signal(x, SR, channel=1).reason


def test_wrong_rate_only_when_training_rates_are_known():
    assert check_signal(_noise(), 8000).ok
    check = check_signal(_noise(), 8000, (16000,))
    assert check.reason == "wrong rate (8000 Hz; trained on 16000 Hz)"


def test_several_problems_are_all_reported():
    check = check_signal(np.zeros((SR, 1), np.float32), 44100, (16000,))
    assert "silent" in check.reason and "wrong rate" in check.reason


def test_check_file_reads_the_samples_and_never_raises(tmp_path):
    good = tmp_path / "ok.wav"
    sf.write(good, _noise(0.1, channels=2), SR, subtype="PCM_16")
    assert check_file(good, (SR,)).ok
    clipped = tmp_path / "clipped.wav"
    sf.write(clipped, _noise(2.0), SR, subtype="PCM_16")  # PCM saturates at full scale
    assert "clipped" in check_file(clipped).reason
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    assert check_file(bad).status == "error"
    assert check_file(tmp_path / "missing.wav").status == "error"
