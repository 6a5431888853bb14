"""Noise generators: white (uniform), Gaussian, pink (1/f) and brown (1/f^2) at a chosen RMS."""

from __future__ import annotations

import numpy as np

from soundwatch.errors import ConfigError

__all__ = ["NOISE_COLORS", "brown", "colored", "gaussian", "pink", "rms", "white"]

NOISE_COLORS = ("white", "gaussian", "pink", "brown")
"""Names :func:`colored` accepts."""

_EPS = 1e-12


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal (computed in float64)."""
    x = np.asarray(x)
    if x.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _check(n: int, level: float) -> int:
    if int(n) != n or n < 0:
        raise ConfigError("n", f"number of samples must be a non-negative integer, got {n!r}")
    if not np.isfinite(level) or level < 0:
        raise ConfigError("rms", f"must be a finite non-negative number, got {level!r}")
    return int(n)


def _scale(x: np.ndarray, level: float) -> np.ndarray:
    current = rms(x)
    if current < _EPS:
        return np.zeros(x.shape, np.float32)
    return (x * (level / current)).astype(np.float32)


def white(n: int, rms: float = 0.1, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Uniformly distributed white noise (flat spectrum).

    Args:
        n: Number of samples.
        rms: Root-mean-square level of the result.
        rng: A numpy ``Generator`` (or a seed); ``None`` draws fresh entropy.

    Returns:
        float32 array of ``n`` samples with exactly the requested RMS.
    """
    n = _check(n, rms)
    x = _rng(rng).uniform(-1.0, 1.0, n)
    return _scale(x, rms)


def gaussian(n: int, rms: float = 0.1, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Normally distributed white noise (flat spectrum).

    Args:
        n: Number of samples.
        rms: Root-mean-square level of the result.
        rng: A numpy ``Generator`` (or a seed).

    Returns:
        float32 array of ``n`` samples with exactly the requested RMS.
    """
    n = _check(n, rms)
    x = _rng(rng).standard_normal(n)
    return _scale(x, rms)


def _power_law(
    n: int, exponent: float, level: float, rng: np.random.Generator | int | None,
    sr: float, fmin: float,
) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as ``1 / f**exponent`` above ``fmin``.

    Shaped in the frequency domain (one inverse real FFT): exact slope, no filter
    start-up transient. Below ``fmin`` the spectrum is flat at its ``fmin`` level, so that
    sub-audio drift does not swallow the signal's RMS; DC is zero.
    """
    n = _check(n, level)
    gen = _rng(rng)
    if n < 2:
        return np.zeros(n, np.float32)
    m = n // 2 + 1
    spec = gen.standard_normal(m) + 1j * gen.standard_normal(m)
    freqs = np.fft.rfftfreq(n, d=1.0 / sr)
    floor = max(float(fmin), float(freqs[1]))
    amp = np.maximum(freqs, floor) ** (-exponent / 2.0)
    amp[0] = 0.0
    x = np.fft.irfft(spec * amp, n)
    return _scale(x, level)


def pink(
    n: int, rms: float = 0.1, rng: np.random.Generator | int | None = None,
    *, sr: float = 16000, fmin: float = 20.0,
) -> np.ndarray:
    """Pink noise: power falls by 10 dB per decade (1/f).

    Args:
        n: Number of samples.
        rms: Root-mean-square level of the result.
        rng: A numpy ``Generator`` (or a seed).
        sr: Sample rate, only used to place ``fmin``.
        fmin: Below this frequency (Hz) the spectrum is flat instead of rising.

    Returns:
        float32 array of ``n`` samples with exactly the requested RMS.
    """
    return _power_law(n, 1.0, rms, rng, sr, fmin)


def brown(
    n: int, rms: float = 0.1, rng: np.random.Generator | int | None = None,
    *, sr: float = 16000, fmin: float = 20.0,
) -> np.ndarray:
    """Brown (Brownian, integrated) noise: power falls by 20 dB per decade (1/f^2).

    Arguments and result as :func:`pink`.
    """
    return _power_law(n, 2.0, rms, rng, sr, fmin)


def colored(
    color: str, n: int, rms: float = 0.1, rng: np.random.Generator | int | None = None,
    *, sr: float = 16000,
) -> np.ndarray:
    """Noise of a colour given by name.

    Args:
        color: One of :data:`NOISE_COLORS` (``white`` is uniform, ``gaussian`` normal;
            both are spectrally flat).
        n: Number of samples.
        rms: Root-mean-square level of the result.
        rng: A numpy ``Generator`` (or a seed).
        sr: Sample rate (pink and brown only: places their 20 Hz floor).

    Returns:
        float32 array of ``n`` samples.

    Raises:
        ConfigError: Unknown colour or bad size/level.
    """
    key = str(color).lower()
    if key == "white":
        return white(n, rms, rng)
    if key == "gaussian":
        return gaussian(n, rms, rng)
    if key == "pink":
        return pink(n, rms, rng, sr=sr)
    if key in ("brown", "brownian", "red"):
        return brown(n, rms, rng, sr=sr)
    raise ConfigError(
        "color", f"unknown noise colour {color!r}; choose from {', '.join(NOISE_COLORS)}")
