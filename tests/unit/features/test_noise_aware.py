"""Noise-aware views of (near, far) pairs: the far channel's noise is removed from the near one."""

from __future__ import annotations

import numpy as np
import pytest

from soundwatch.errors import ConfigError
from soundwatch.features.noise_aware import (
    ENHANCEMENTS,
    enhance,
    near_minus_far_logmel,
    spectral_gate,
    spectral_subtract,
    wiener,
)

SR = 16000


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A machine (two tones) in loud coloured noise near; the same noise, 12 dB less machine far."""
    rng = np.random.default_rng(seed)
    t = np.arange(2 * SR) / SR
    machine = 0.1 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 1200 * t)
    noise = np.convolve(rng.normal(size=t.size), np.ones(4) / 4, mode="same") * 0.3
    near = (machine + noise).astype(np.float32)
    far = (0.25 * machine + 0.9 * noise + 0.03 * rng.normal(size=t.size)).astype(np.float32)
    return machine.astype(np.float32), near, far


def _error_db(estimate: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(np.mean((estimate - clean) ** 2) / np.mean(clean ** 2)))


@pytest.mark.parametrize("method", [spectral_subtract, wiener])
def test_reference_methods_bring_the_near_channel_closer_to_the_machine(method):
    clean, near, far = _pair()
    out = method(near, far)
    assert out.shape == near.shape and out.dtype == np.float32
    assert _error_db(out, clean) < _error_db(near, clean) - 6.0


def test_near_minus_far_cancels_the_common_environment():
    rng = np.random.default_rng(1)
    far = rng.normal(size=SR).astype(np.float32)
    view = near_minus_far_logmel(2.0 * far, far, SR, n_mels=32)
    assert view.shape[0] == 32
    np.testing.assert_allclose(view, 20 * np.log10(2.0), atol=1e-3)


def test_spectral_gate_with_the_far_reference_removes_noise():
    pytest.importorskip("noisereduce", reason="needs soundwatch[noise]")
    clean, near, far = _pair(2)
    gated = spectral_gate(near, SR, noise=far)
    assert gated.shape == near.shape
    assert _error_db(gated, clean) < _error_db(near, clean)
    assert spectral_gate(near, SR).shape == near.shape


def test_enhance_names_and_bad_input():
    clean, near, far = _pair()
    assert set(ENHANCEMENTS) >= {"near", "subtract", "wiener"}
    np.testing.assert_array_equal(enhance("near", near, far, SR), near)
    with pytest.raises(ConfigError, match="not one of"):
        enhance("magic", near, far, SR)
    with pytest.raises(ConfigError, match="same length"):
        spectral_subtract(near, far[:-1])
