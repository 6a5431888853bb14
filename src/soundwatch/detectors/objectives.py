"""Training objectives of the network detectors and the on-the-fly synthetic-anomaly generator."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from soundwatch.errors import ConfigError

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip

__all__ = [
    "ANOMALY_KINDS",
    "AUX_FIELDS",
    "OBJECTIVES",
    "DomainKNN",
    "SyntheticAnomalies",
    "auxiliary_labels",
    "clip_class_key",
]

log = logging.getLogger(__name__)

OBJECTIVES = ("supervised", "synthetic", "auxiliary")
"""Objective names of the network detectors.

- ``supervised``: true normal/anomaly labels, binary cross-entropy; score = probability.
- ``synthetic``: normal clips only; anomalies are made from them on the fly by
  :class:`SyntheticAnomalies`; binary cross-entropy; score = probability.
- ``auxiliary``: normal clips only; a cosine-margin classifier learns what is known
  about each clip (:func:`auxiliary_labels`); score = domain-aware cosine k-NN distance
  (:class:`DomainKNN`).
"""

ANOMALY_KINDS = (
    "noise", "tone", "impulses", "burst", "pitch", "speed", "notch", "modulation", "eq",
)
"""Kinds of synthetic anomalies :class:`SyntheticAnomalies` can make."""

AUX_FIELDS = ("machine", "section", "attributes", "domain", "machine_id")
"""Clip fields the auxiliary classes may be built from."""

_EPS = 1e-12


# --------------------------------------------------------------------------- synthetic anomalies


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
        bad = [k for k in self.kinds if k not in ANOMALY_KINDS]
        if not self.kinds or bad:
            raise ConfigError(
                "anomaly_kinds", f"unknown kind(s) {bad} (known: {', '.join(ANOMALY_KINDS)})"
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
        raise ConfigError("anomaly_kinds", f"unknown kind {kind!r}")


def _bandpass(x: np.ndarray, lo: float, hi: float, sr: int) -> np.ndarray:
    """Zero the spectrum outside ``lo..hi`` Hz (FFT mask; fine for noise)."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1.0 / sr)
    spec[(freqs < lo) | (freqs > hi)] = 0.0
    return np.fft.irfft(spec, x.size).astype(np.float32)


# --------------------------------------------------------------------------- auxiliary labels


def clip_class_key(clip: Clip, fields: Sequence[str] = ("machine", "section", "attributes")) -> str:
    """The auxiliary class of a clip: the values of ``fields`` that it has, joined.

    ``attributes`` contributes every ``name=value`` pair (sorted); a field that is
    ``None`` (or empty) is left out, so a clip without attributes falls back to its
    section, and one without a section to its machine ID or machine type.

    Args:
        clip: The clip.
        fields: Names among :data:`AUX_FIELDS`.

    Returns:
        A string such as ``"fan|00|vel=6|loc=A"``.
    """
    parts: list[str] = []
    for name in fields:
        if name not in AUX_FIELDS:
            known = ", ".join(AUX_FIELDS)
            raise ConfigError("aux_fields", f"unknown field {name!r} (known: {known})")
        if name == "attributes":
            parts.extend(f"{k}={v}" for k, v in sorted((clip.attributes or {}).items()))
            continue
        value = getattr(clip, name)
        if value not in (None, ""):
            parts.append(str(value))
    if "section" in fields and clip.section is None and clip.machine_id and (
        "machine_id" not in fields
    ):
        parts.append(str(clip.machine_id))
    return "|".join(parts) or "all"


def auxiliary_labels(
    clips: Sequence[Clip], fields: Sequence[str] = ("machine", "section", "attributes")
) -> tuple[np.ndarray, list[str]]:
    """Integer class labels for the auxiliary classifier.

    Args:
        clips: Training clips.
        fields: Clip fields that define a class (see :func:`clip_class_key`).

    Returns:
        ``(labels, class_names)``: labels[i] indexes class_names (sorted).
    """
    keys = [clip_class_key(c, fields) for c in clips]
    names = sorted(set(keys))
    index = {k: i for i, k in enumerate(names)}
    return np.array([index[k] for k in keys], dtype=np.int64), names


# --------------------------------------------------------------------------- k-NN scorer


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)


class DomainKNN:
    """Domain-aware cosine k-NN distance (the DCASE 2023-2024 top-system scorer).

    The score of an embedding is its mean cosine distance to the ``k`` nearest source
    training embeddings, and separately to the ``k`` nearest target ones; the smaller of
    the two is kept (a clip is normal if it resembles either domain). Source embeddings
    may first be summarised by k-means centres, so that the few target clips are not
    outnumbered.

    Args:
        k: Number of neighbours.
        kmeans_source: Number of k-means centres replacing the source embeddings
            (``None``: keep them all).
        seed: k-means seed.
    """

    def __init__(self, k: int = 1, kmeans_source: int | None = None, seed: int = 0) -> None:
        self.k = int(k)
        self.kmeans_source = kmeans_source
        self.seed = seed
        self.banks: dict[str, np.ndarray] = {}

    def fit(self, embeddings: np.ndarray, domains: Sequence[str | None]) -> DomainKNN:
        """Store the training embeddings by domain (``None`` counts as source)."""
        emb = _normalise(embeddings)
        is_target = np.array([d == "target" for d in domains], dtype=bool)
        source, target = emb[~is_target], emb[is_target]
        if source.shape[0] and self.kmeans_source and self.kmeans_source < source.shape[0]:
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=int(self.kmeans_source), n_init=3, random_state=self.seed)
            km.fit(source)
            source = _normalise(km.cluster_centers_)
        self.banks = {name: bank for name, bank in (("source", source), ("target", target))
                      if bank.shape[0]}
        return self

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Anomaly score per embedding (float64, higher = more anomalous)."""
        if not self.banks:
            raise ValueError("DomainKNN is not fitted")
        emb = _normalise(embeddings)
        best = np.full(emb.shape[0], np.inf)
        for bank in self.banks.values():
            dist = 1.0 - emb @ bank.T
            k = min(self.k, bank.shape[0])
            nearest = np.partition(dist, k - 1, axis=1)[:, :k] if k < bank.shape[0] else dist
            best = np.minimum(best, nearest.mean(axis=1))
        return best
