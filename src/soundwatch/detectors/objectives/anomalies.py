"""The synthetic-anomaly generator: "anomalous" versions of normal clips, made on the fly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soundwatch.errors import ConfigError

__all__ = ["ANOMALY_KINDS", "EXTRA_ANOMALY_KINDS", "SyntheticAnomalies"]

ANOMALY_KINDS = (
    "noise", "tone", "impulses", "burst", "pitch", "speed", "notch", "modulation", "eq",
)
"""Kinds of synthetic anomalies :class:`SyntheticAnomalies` draws from by default."""

EXTRA_ANOMALY_KINDS = ("speech",)
"""Kinds made only when asked for by name (``speech`` needs Debian's espeak-ng); kept out
of the default draw so that the default kinds' behaviour and seeds stay as they were."""

_EPS = 1e-12


def _rms(x: np.ndarray) -> float:
    from soundwatch.synth.noise import rms

    return rms(x)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad ``y`` to ``n`` samples (centred crop)."""
    if y.size >= n:
        start = (y.size - n) // 2
        return y[start : start + n]
    out = np.zeros(n, np.float32)
    out[: y.size] = y
    return out


def _at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x + noise`` with ``noise`` scaled so that power(x) / power(noise) = ``snr_db``."""
    px, pn = _rms(x), _rms(noise)
    if px < _EPS or pn < _EPS:
        return x.copy()
    return (x + noise * np.float32(px / (pn * 10.0 ** (snr_db / 20.0)))).astype(np.float32)


@dataclass(frozen=True)
class SyntheticAnomalies:
    """Makes "anomalous" versions of normal clips with soundwatch's augmentations.

    Each call draws one kind from ``kinds`` and random settings from the ranges below:

    - ``noise``: pink, white or brown noise over the whole clip at an SNR in ``snr_db``.
    - ``tone``: a sinusoid (with a few harmonics) at a random frequency, SNR in ``snr_db``.
    - ``impulses``: a few decaying clicks (impacts, rattles), peak SNR in ``snr_db``.
    - ``burst``: band-limited noise over a random part of the clip, SNR in ``snr_db``.
    - ``pitch``: pitch shift by 0.5-``max_semitones`` semitones up or down (same length).
    - ``speed``: play faster or slower by 2-``max_speed`` %, cropped/padded to length
      (the machine runs at another speed).
    - ``notch``: a band of the spectrum attenuated by 20-40 dB (a missing component).
    - ``modulation``: the clip amplitude-modulated at 1-50 Hz (a once-per-revolution
      imbalance or a surging flow), sideband power ``snr_db`` below the clip's.
    - ``eq``: one band of the spectrum 2-8 dB louder or softer, a smooth bump on a log
      frequency axis (a component grown or faded).
    - ``speech`` (only when listed in ``kinds``): synthesised speech (espeak-ng, see
      :mod:`soundwatch.synth.speech`) at an SNR in ``snr_db``: someone talking by the
      machine, a fake anomaly for detectors that must ignore it or flag it.

    Args:
        kinds: Kinds to draw from (uniformly).
        snr_db: (low, high) SNR range in dB for the additive kinds (lower = louder anomaly).
        sr: Sample rate of the clips.
        max_semitones: Largest pitch shift.
        max_speed: Largest relative speed change (0.1 = 10 %).
    """

    kinds: tuple[str, ...] = ANOMALY_KINDS
    snr_db: tuple[float, float] = (0.0, 20.0)
    sr: int = 16000
    max_semitones: float = 2.0
    max_speed: float = 0.1

    def __post_init__(self) -> None:
        known = ANOMALY_KINDS + EXTRA_ANOMALY_KINDS
        bad = [k for k in self.kinds if k not in known]
        if not self.kinds or bad:
            raise ConfigError(
                "anomaly_kinds", f"unknown kind(s) {bad} (known: {', '.join(known)})"
            )
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ConfigError("snr_db", f"expected (low, high), got {self.snr_db!r}")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One synthetic anomaly made from ``x``.

        Args:
            x: Normal mono clip (float32).
            rng: Random generator (seed it per epoch and item for reproducibility).

        Returns:
            The anomalous clip (float32, same length) and the kind that was applied.
        """
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        return self.make(x, kind, rng), kind

    def make(self, x: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
        """Apply one anomaly ``kind`` to ``x`` (float32 in, float32 out, same length)."""
        x = np.asarray(x, dtype=np.float32)
        n = x.size
        if n < 16:
            return x.copy()
        snr = float(rng.uniform(*self.snr_db))
        if kind == "noise":
            from soundwatch.synth.augment import add_noise

            color = ("pink", "white", "brown")[int(rng.integers(3))]
            return add_noise(x, snr, color=color, rng=rng, sr=self.sr)
        if kind == "tone":
            t = np.arange(n, dtype=np.float64) / self.sr
            f0 = float(np.exp(rng.uniform(np.log(60.0), np.log(0.4 * self.sr))))
            tone = np.zeros(n)
            for h in range(1, int(rng.integers(1, 4)) + 1):
                if h * f0 < 0.48 * self.sr:
                    tone += np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h
            return _at_snr(x, tone.astype(np.float32), snr)
        if kind == "impulses":
            clicks = np.zeros(n, np.float32)
            length = min(n, int(0.02 * self.sr) + 1)
            decay = np.exp(-np.arange(length) / max(1.0, 0.003 * self.sr)).astype(np.float32)
            for _ in range(int(rng.integers(1, 8))):
                at = int(rng.integers(0, n))
                piece = (rng.standard_normal(length).astype(np.float32) * decay)[: n - at]
                clicks[at : at + piece.size] += piece
            # Impulses are sparse: compare powers over the clicks' support, not the clip.
            return _at_snr(x, clicks, snr - 10.0)
        if kind == "burst":
            from soundwatch.synth.noise import white

            lo = float(np.exp(rng.uniform(np.log(50.0), np.log(0.3 * self.sr))))
            hi = min(0.49 * self.sr, lo * float(rng.uniform(1.3, 3.0)))
            noise = _bandpass(white(n, 1.0, rng), lo, hi, self.sr)
            span = int(n * rng.uniform(0.1, 0.6))
            start = int(rng.integers(0, n - span + 1))
            env = np.zeros(n, np.float32)
            env[start : start + span] = np.hanning(span) if span > 2 else 1.0
            return _at_snr(x, noise * env, snr - 5.0)
        if kind == "pitch":
            from soundwatch.synth.augment import pitch_shift

            steps = float(rng.uniform(0.5, self.max_semitones)) * (1 if rng.random() < 0.5 else -1)
            return pitch_shift(x, self.sr, steps)
        if kind == "speed":
            from soundwatch.synth.augment import speed

            sign = 1 if rng.random() < 0.5 else -1
            rate = 1.0 + float(rng.uniform(0.02, self.max_speed)) * sign
            return _fit_length(speed(x, rate), n)
        if kind == "notch":
            spec = np.fft.rfft(x)
            freqs = np.fft.rfftfreq(n, 1.0 / self.sr)
            centre = float(np.exp(rng.uniform(np.log(100.0), np.log(0.45 * self.sr))))
            width = centre * float(rng.uniform(0.1, 0.5))
            band = np.abs(freqs - centre) < width / 2
            spec[band] *= 10.0 ** (-float(rng.uniform(20.0, 40.0)) / 20.0)
            return np.fft.irfft(spec, n).astype(np.float32)
        if kind == "modulation":
            t = np.arange(n, dtype=np.float64) / self.sr
            rate = float(np.exp(rng.uniform(np.log(1.0), np.log(50.0))))
            # sidebands of x * (1 + m sin) carry m^2 / 2 of the power of x
            depth = min(0.9, np.sqrt(2.0) * 10.0 ** (-snr / 20.0))
            env = 1.0 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
            return (x * env).astype(np.float32)
        if kind == "eq":
            spec = np.fft.rfft(x)
            logf = np.log(np.maximum(np.fft.rfftfreq(n, 1.0 / self.sr), 1.0))
            centre = rng.uniform(np.log(50.0), np.log(0.45 * self.sr))
            width = float(rng.uniform(0.1, 0.6))  # octave-ish, in natural-log units
            db = float(rng.uniform(2.0, 8.0)) * (1 if rng.random() < 0.5 else -1)
            spec *= 10.0 ** (db * np.exp(-0.5 * ((logf - centre) / width) ** 2) / 20.0)
            return np.fft.irfft(spec, n).astype(np.float32)
        if kind == "speech":
            from soundwatch.synth.speech import add_speech

            return add_speech(x, snr, self.sr, rng)
        raise ConfigError("anomaly_kinds", f"unknown kind {kind!r}")


def _bandpass(x: np.ndarray, lo: float, hi: float, sr: int) -> np.ndarray:
    """Zero the spectrum outside ``lo..hi`` Hz (FFT mask; fine for noise)."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1.0 / sr)
    spec[(freqs < lo) | (freqs > hi)] = 0.0
    return np.fft.irfft(spec, x.size).astype(np.float32)
