"""Noise-aware views of two-channel (near, far) clips: the far microphone as a noise reference.

Pure functions on numpy waveforms (DCASE 2026 channel 0 near the machine, channel 1 far
from it): spectral subtraction and a Wiener-style gain of the near channel by the far one,
the near-minus-far log-mel view, and spectral gating with the ``noisereduce`` library, with
or without a noise reference. They give a single-channel waveform (or log-mel) any
front-end and detector can read (benchmarks/noise_aware.py compares them).
"""

from __future__ import annotations

import numpy as np

from soundwatch.errors import ConfigError

__all__ = ["ENHANCEMENTS", "enhance", "near_minus_far_logmel", "reference_gain",
           "spectral_gate", "spectral_subtract", "wiener"]

ENHANCEMENTS = ("near", "subtract", "wiener", "gate", "gate-far")
"""Names :func:`enhance` knows (``near``: the near channel as it is)."""

_EPS = 1e-10


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    import librosa

    return librosa.stft(np.asarray(x, dtype=np.float32), n_fft=n_fft, hop_length=hop)


def _istft(spec: np.ndarray, hop: int, length: int) -> np.ndarray:
    import librosa

    return librosa.istft(spec, hop_length=hop, length=length).astype(np.float32)


def _pair(near: np.ndarray, far: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    near, far = np.asarray(near, dtype=np.float32), np.asarray(far, dtype=np.float32)
    if near.ndim != 1 or near.shape != far.shape:
        raise ConfigError("near/far", f"need two 1-D channels of the same length, got "
                          f"{near.shape} and {far.shape}")
    return near, far


def reference_gain(near_power: np.ndarray, far_power: np.ndarray) -> np.ndarray:
    """Per-frequency scale of the far channel's power to the near channel's noise power.

    The least-squares fit of near power on far power over the clip's frames (``[F, T]`` ->
    ``[F, 1]``): the far microphone hears the same environment at another level, and the
    machine (weaker there) adds little to the fit.
    """
    return (np.sum(near_power * far_power, axis=1, keepdims=True)
            / (np.sum(far_power ** 2, axis=1, keepdims=True) + _EPS))


def _noise_power(near: np.ndarray, far: np.ndarray, n_fft: int, hop: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    spec, ref = _stft(near, n_fft, hop), _stft(far, n_fft, hop)
    power, ref_power = np.abs(spec) ** 2, np.abs(ref) ** 2
    return spec, power, reference_gain(power, ref_power) * ref_power


def spectral_subtract(near: np.ndarray, far: np.ndarray, *, n_fft: int = 1024, hop: int = 256,
                      over: float = 1.0, floor: float = 0.05) -> np.ndarray:
    """Power spectral subtraction of the far channel's (scaled) power from the near one's.

    Args:
        near: Near-microphone waveform.
        far: Far-microphone waveform (same length).
        n_fft: STFT size.
        hop: STFT hop.
        over: Over-subtraction factor.
        floor: Spectral floor, a fraction of the near power kept in every bin.

    Returns:
        The enhanced near waveform (same length, near's phase).
    """
    near, far = _pair(near, far)
    spec, power, noise = _noise_power(near, far, n_fft, hop)
    clean = np.maximum(power - over * noise, floor * power)
    return _istft(spec * np.sqrt(clean / (power + _EPS)), hop, near.size)


def wiener(near: np.ndarray, far: np.ndarray, *, n_fft: int = 1024, hop: int = 256,
           floor: float = 0.05) -> np.ndarray:
    """Wiener-style gain of the near channel by the far one.

    The gain is ``xi / (1 + xi)`` (at least ``floor``), ``xi`` the a-priori SNR estimated
    by subtracting the far channel's scaled power.

    Args:
        near: Near-microphone waveform.
        far: Far-microphone waveform (same length).
        n_fft: STFT size.
        hop: STFT hop.
        floor: Smallest gain.

    Returns:
        The enhanced near waveform.
    """
    near, far = _pair(near, far)
    spec, power, noise = _noise_power(near, far, n_fft, hop)
    xi = np.maximum(power - noise, 0.0) / (noise + _EPS)
    return _istft(spec * np.maximum(xi / (1.0 + xi), floor), hop, near.size)


def spectral_gate(near: np.ndarray, sr: int, noise: np.ndarray | None = None, *,
                  prop_decrease: float = 1.0) -> np.ndarray:
    """Spectral gating (``noisereduce``): stationary with a noise clip, else non-stationary.

    Args:
        near: The waveform to clean.
        sr: Sample rate.
        noise: A noise reference (the far channel, or a noise-only clip); ``None``: the
            non-stationary gate estimates the noise from ``near`` itself.
        prop_decrease: Fraction of the noise removed.

    Raises:
        ConfigError: ``noisereduce`` is not installed.
    """
    try:
        import noisereduce
    except ImportError:
        raise ConfigError("noisereduce", "is not installed: pip install 'soundwatch[noise]'"
                          ) from None
    near = np.asarray(near, dtype=np.float32)
    if noise is None:
        out = noisereduce.reduce_noise(y=near, sr=sr, stationary=False,
                                       prop_decrease=prop_decrease)
    else:
        out = noisereduce.reduce_noise(y=near, sr=sr, y_noise=np.asarray(noise, np.float32),
                                       stationary=True, prop_decrease=prop_decrease)
    return np.asarray(out, dtype=np.float32)


def near_minus_far_logmel(near: np.ndarray, far: np.ndarray, sr: int, *, n_mels: int = 64,
                          n_fft: int = 1024, hop: int = 512) -> np.ndarray:
    """Log-mel of the near channel minus that of the far one, ``[n_mels, T]`` (dB).

    The environment common to both microphones cancels (up to their level difference,
    a constant per band); the machine, louder near, remains.
    """
    import librosa

    near, far = _pair(near, far)
    mels = [librosa.power_to_db(librosa.feature.melspectrogram(
        y=x, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels), ref=1.0, amin=1e-10)
        for x in (near, far)]
    return (mels[0] - mels[1]).astype(np.float32)


def enhance(name: str, near: np.ndarray, far: np.ndarray, sr: int) -> np.ndarray:
    """One of :data:`ENHANCEMENTS` applied to a (near, far) pair: a single waveform.

    Raises:
        ConfigError: An unknown name.
    """
    if name == "near":
        return np.asarray(near, dtype=np.float32)
    if name == "subtract":
        return spectral_subtract(near, far)
    if name == "wiener":
        return wiener(near, far)
    if name == "gate":
        return spectral_gate(near, sr)
    if name == "gate-far":
        return spectral_gate(near, sr, noise=far)
    raise ConfigError("enhancement", f"{name!r} is not one of {', '.join(ENHANCEMENTS)}")
