"""The synthetic-anomaly generator: every kind, SNRs, reproducibility, refused settings."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.detectors.objectives import ANOMALY_KINDS, SyntheticAnomalies
from soundwatch.errors import ConfigError

SR = 16000


def _normal(seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )


@pytest.mark.parametrize("kind", [k for k in ANOMALY_KINDS if k != "pitch"])
def test_each_kind_changes_the_clip_and_keeps_its_length(kind):
    x = _normal()
    y = SyntheticAnomalies(snr_db=(5.0, 5.0)).make(x, kind, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    assert np.abs(y - x).mean() > 1e-4


def test_pitch_kind_changes_the_clip():
    x = _normal(0.5)
    y = SyntheticAnomalies().make(x, "pitch", np.random.default_rng(1))
    assert y.shape == x.shape and np.abs(y - x).mean() > 1e-3


def test_noise_kind_hits_the_asked_snr():
    from soundwatch.synth.augment import snr_db

    x = _normal()
    y = SyntheticAnomalies(snr_db=(7.0, 7.0)).make(x, "noise", np.random.default_rng(0))
    assert snr_db(x, y - x) == pytest.approx(7.0, abs=0.05)


def test_modulation_kind_puts_the_asked_power_in_the_sidebands():
    from soundwatch.synth.augment import snr_db

    x = _normal()
    y = SyntheticAnomalies(snr_db=(15.0, 15.0)).make(x, "modulation", np.random.default_rng(0))
    # x * (1 + m sin): the added part x * m * sin holds m^2 / 2 of the power of x
    assert snr_db(x, y - x) == pytest.approx(15.0, abs=1.0)
    assert np.abs(np.fft.rfft(y)).argmax() == np.abs(np.fft.rfft(x)).argmax()


def test_eq_kind_changes_one_band_by_a_few_db():
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    y = SyntheticAnomalies().make(x, "eq", np.random.default_rng(2))
    gain_db = 20 * np.log10(np.abs(np.fft.rfft(y))[1:] / np.abs(np.fft.rfft(x))[1:])
    peak = gain_db[np.abs(gain_db).argmax()]
    assert 2.0 - 1e-3 <= abs(peak) <= 8.0 + 1e-3
    # a smooth bump: most of the spectrum is untouched
    assert np.mean(np.abs(gain_db) < 0.5) > 0.3


def test_same_rng_seed_same_anomaly():
    gen = SyntheticAnomalies()
    x = _normal()
    a, kind_a = gen(x, np.random.default_rng([3, 1, 0]))
    b, kind_b = gen(x, np.random.default_rng([3, 1, 0]))
    assert kind_a == kind_b
    np.testing.assert_array_equal(a, b)


def test_kinds_are_drawn_from_the_given_list():
    gen = SyntheticAnomalies(kinds=("tone", "notch"))
    rng = np.random.default_rng(0)
    kinds = {gen(_normal(0.2), rng)[1] for _ in range(20)}
    assert kinds == {"tone", "notch"}


def test_unknown_kind_and_bad_snr_are_refused():
    with pytest.raises(ConfigError, match="unknown kind"):
        SyntheticAnomalies(kinds=("explosion",))
    with pytest.raises(ConfigError, match="snr_db"):
        SyntheticAnomalies(snr_db=(10.0, 0.0))
