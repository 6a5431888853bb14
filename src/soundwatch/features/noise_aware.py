"""Noise-aware front-end options: the far microphone or noise-only clips as a noise reference.

Pure functions on numpy waveforms (DCASE 2026 channel 0 near the machine, channel 1 far
from it): spectral subtraction and a Wiener-style gain of the near channel by the far one,
the near-minus-far log-mel view, and spectral gating with the ``noisereduce`` library, with
or without a noise reference. :class:`NoiseAwareFrontEnd` makes them front-end options of
any composed detector (the front-end parameter ``reference``); the DCASE 2025 noise-only
clips (``supplemental/section_XX_noise_*``) give a fixed noise reference
(``subtract-noise``, ``gate-noise``) and noisy copies of the training clips
(``noise_augment``). Torch is imported only where a front-end runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.errors import AudioError, ConfigError
from soundwatch.features.configs import (
    NOISE_PARAMS,
    NOISE_REFERENCES,
    REFERENCES,
    TWO_CHANNEL_REFERENCES,
    NoiseAwareConfig,
    split_noise_params,
)

__all__ = ["ENHANCEMENTS", "NOISE_PARAMS", "NOISE_REFERENCES", "NoiseAwareConfig",
           "NoiseAwareFrontEnd", "NoiseTraining", "REFERENCES", "TWO_CHANNEL_REFERENCES",
           "augment_with_noise", "enhance", "export_reason", "find_noise_clips",
           "near_minus_far_logmel", "noise_config", "noise_power_spectrum", "noise_training",
           "reference_gain",
           "spectral_gate", "spectral_subtract", "split_noise_params", "subtract_noise",
           "wiener", "wrap_frontend"]

log = logging.getLogger(__name__)

ENHANCEMENTS = ("near", "subtract", "wiener", "gate", "gate-far")
"""Names :func:`enhance` knows (``near``: the near channel as it is)."""

_EPS = 1e-10


# scipy's STFT, not librosa's: librosa's istft compiles numba code on first use (10 s to
# a minute per process), which every detector using these options would pay
def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    from scipy.signal import stft

    return stft(np.asarray(x, dtype=np.float32), nperseg=n_fft, noverlap=n_fft - hop,
                window="hann")[2]


def _istft(spec: np.ndarray, hop: int, length: int) -> np.ndarray:
    from scipy.signal import istft

    n_fft = 2 * (spec.shape[0] - 1)
    y = istft(spec, nperseg=n_fft, noverlap=n_fft - hop, window="hann")[1]
    return np.pad(y[:length], (0, max(0, length - y.size))).astype(np.float32)


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


def subtract_noise(x: np.ndarray, noise_power: np.ndarray, *, n_fft: int = 1024,
                   hop: int = 256, over: float = 1.0, floor: float = 0.05) -> np.ndarray:
    """Power spectral subtraction of a fixed noise spectrum (from noise-only clips).

    Args:
        x: The waveform to clean.
        noise_power: Mean noise power per STFT bin ``[n_fft // 2 + 1]``
            (:func:`noise_power_spectrum`).
        n_fft: STFT size (the one ``noise_power`` was computed with).
        hop: STFT hop.
        over: Over-subtraction factor.
        floor: Spectral floor, a fraction of the power kept in every bin.

    Returns:
        The cleaned waveform (same length).
    """
    x = np.asarray(x, dtype=np.float32)
    spec = _stft(x, n_fft, hop)
    power = np.abs(spec) ** 2
    clean = np.maximum(power - over * noise_power[:, None], floor * power)
    return _istft(spec * np.sqrt(clean / (power + _EPS)), hop, x.size)


def noise_power_spectrum(noise: np.ndarray, *, n_fft: int = 1024, hop: int = 256
                         ) -> np.ndarray:
    """Mean power per STFT bin of a noise-only waveform, ``[n_fft // 2 + 1]``."""
    return (np.abs(_stft(noise, n_fft, hop)) ** 2).mean(axis=1)


# --------------------------------------------------------------------------- options

NOISE_REFERENCE_SECONDS = 10.0
"""Seconds of noise-only audio a fitted detector keeps as its noise reference."""

def noise_config(params: dict[str, Any] | None) -> NoiseAwareConfig:
    """The noise-aware config of a detector's front-end params."""
    return split_noise_params(None, dict(params or {}))[1]


def export_reason(params: dict[str, Any] | None) -> str | None:
    """Why a front-end with these params cannot be exported to ONNX (``None``: it can)."""
    cfg = noise_config(params)
    if cfg.reference == "none":
        return None
    return (f"reference={cfg.reference} (noise-aware processing in numpy/scipy/"
            "noisereduce) has no ONNX twin")


def _digest(array: np.ndarray | None) -> str | None:
    if array is None:
        return None
    return hashlib.blake2b(np.ascontiguousarray(array, dtype=np.float32).tobytes(),
                           digest_size=16).hexdigest()


class NoiseAwareFrontEnd:
    """A front-end behind a noise-aware option: two channels (or a noise reference) in.

    It has the front-end interface the feature extraction and the cache use (``name``,
    ``sr``, ``layout``, ``config_hash``, ``output_shape``, calling it on a batch) and
    loads what the option needs (:meth:`load_clip`): ``[2, T]`` (near, far) for
    :data:`TWO_CHANNEL_REFERENCES`, one channel otherwise. Its name and config hash
    include the option (and the noise reference's digest), so cached features of
    different options never mix.

    Args:
        inner: The front-end (a :class:`~soundwatch.features.frontends.FrontEnd`).
        config: The noise-aware option.
        noise: The noise reference waveform at ``inner.sr`` (``subtract-noise``,
            ``gate-noise``).
    """

    def __init__(self, inner: Any, config: NoiseAwareConfig, noise: np.ndarray | None = None
                 ) -> None:
        self.inner = inner
        self.noise_config = config
        self.noise = None if noise is None else np.asarray(noise, dtype=np.float32)
        self._noise_power: np.ndarray | None = None

    # -- the front-end interface ----------------------------------------------------
    @property
    def name(self) -> str:  # noqa: D102
        return f"{self.inner.name}.{self.noise_config.reference}"

    @property
    def sr(self) -> int:  # noqa: D102
        return int(self.inner.sr)

    @property
    def layout(self) -> str:  # noqa: D102
        return self.inner.layout

    @property
    def config(self) -> Any:  # noqa: D102
        return self.inner.config

    @property
    def two_channel(self) -> bool:  # noqa: D102
        return self.noise_config.two_channel

    def config_dict(self) -> dict[str, Any]:
        """The front-end's config with the option (and the noise reference's digest)."""
        return {**self.inner.config_dict(), **self.noise_config.key(),
                "noise_reference": _digest(self.noise)}

    def config_hash(self) -> str:
        """The cache key: the front-end's hash, the option and the noise reference."""
        payload = {"inner": self.inner.config_hash(), **self.noise_config.key(),
                   "noise_reference": _digest(self.noise)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """The front-end's shape; ``near+far`` doubles the bins (or vector values)."""
        shape = tuple(self.inner.output_shape(num_samples))
        if self.noise_config.reference != "near+far":
            return shape
        axis = -1 if self.layout == "rows" else -2
        out = list(shape)
        out[axis] *= 2
        return tuple(out)

    def parameters(self) -> Any:  # noqa: D102
        return self.inner.parameters()

    def buffers(self) -> Any:  # noqa: D102
        return self.inner.buffers()

    def to(self, device: Any) -> NoiseAwareFrontEnd:  # noqa: D102
        self.inner = self.inner.to(device)
        return self

    def eval(self) -> NoiseAwareFrontEnd:  # noqa: D102
        self.inner.eval()
        return self

    def with_noise(self, noise: np.ndarray) -> NoiseAwareFrontEnd:
        """The same option with a noise reference (a new object; this one is shared)."""
        return NoiseAwareFrontEnd(self.inner, self.noise_config, noise)

    # -- input ------------------------------------------------------------------------
    def channels(self, path: Any, count: int, near: int | str) -> tuple[int, int]:
        """The (near, far) channel indices of a file with ``count`` channels.

        Raises:
            AudioError: One channel, or more than two without ``far_channel``.
            ConfigError: ``near`` is ``mean``.
        """
        ref = self.noise_config.reference
        if not isinstance(near, int) and not str(near).lstrip("-").isdigit():
            raise ConfigError("--channel", f"reference={ref} reads the near and far channels: "
                              f"give the near channel's index, not {near!r}")
        if count < 2:
            what = "recording" if path == "signal" else "file"
            raise AudioError(path, f"reference={ref} needs two channels (near, far); the "
                             f"{what} has {count}")
        near = int(near) % count
        far = self.noise_config.far_channel
        if far is None:
            if count != 2:
                raise AudioError(path, f"{count} channels: say which one is far with "
                                 "frontend__far_channel")
            far = 1 - near
        if not -count <= far < count or far % count == near:
            raise AudioError(path, f"far channel {far} is not another of the file's "
                             f"{count} channels (near: {near})")
        return near, far % count

    def load_clip(self, path: Any, sr: int | None, channel: int | str) -> np.ndarray:
        """A clip as this option reads it: ``[2, T]`` (near, far) or one channel ``[T]``."""
        from soundwatch.audio import info, load

        if not self.two_channel:
            return load(path, sr=sr, channel=channel)
        near, far = self.channels(path, info(path).channels, channel)
        return np.stack([load(path, sr=sr, channel=near), load(path, sr=sr, channel=far)])

    def signal_input(self, signal: np.ndarray, sr: int, channel: int | str) -> np.ndarray:
        """An in-memory recording (``[T]``, or ``[T, C]`` as soundfile reads it) as input.

        Raises:
            AudioError: A two-channel option given one channel.
        """
        from soundwatch.audio import resample

        x = np.asarray(signal, dtype=np.float32)
        if x.ndim == 2 and x.shape[0] < x.shape[1]:
            x = x.T  # [C, T] -> [T, C]
        if self.two_channel:
            count = x.shape[1] if x.ndim == 2 else 1
            near, far = self.channels("signal", count, channel)
            pair = [x[:, near], x[:, far]]
        else:
            pair = [x if x.ndim == 1 else (x.mean(axis=1) if channel == "mean"
                                          else x[:, int(channel)])]
        out = [resample(np.ascontiguousarray(c), sr, self.sr).astype(np.float32)
               for c in pair]
        return np.stack(out) if self.two_channel else out[0]

    # -- processing -------------------------------------------------------------------
    def _clean(self, near: np.ndarray, far: np.ndarray | None) -> np.ndarray:
        ref = self.noise_config.reference
        if ref in ("subtract", "wiener"):
            return enhance(ref, near, far, self.sr)
        if ref == "gate-far":
            return spectral_gate(near, self.sr, noise=far)
        if ref == "gate":
            return spectral_gate(near, self.sr)
        if self.noise is None:
            raise ConfigError("frontend.reference", f"{ref} needs the noise reference of a "
                              "fitted detector (the machine's noise-only clips)")
        if ref == "gate-noise":
            return spectral_gate(near, self.sr, noise=self.noise)
        if self._noise_power is None:
            self._noise_power = noise_power_spectrum(self.noise)
        return subtract_noise(near, self._noise_power)

    def __call__(self, x: Any) -> Any:
        """Waveforms ``[B, 2, T]`` (two-channel options) or ``[B, T]`` -> features."""
        import torch

        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
        ref = self.noise_config.reference
        if self.two_channel:
            if arr.ndim != 3 or arr.shape[1] != 2:
                raise ConfigError("frontend.reference", f"{ref} needs two channels (near, "
                                  f"far) per clip, got input of shape {arr.shape}")
            near, far = (torch.from_numpy(np.ascontiguousarray(arr[:, i])).to(device)
                         for i in (0, 1))
            if ref == "near-far":
                return self.inner(near) - self.inner(far)
            if ref == "near+far":
                return torch.cat([self.inner(near), self.inner(far)],
                                 dim=-1 if self.layout == "rows" else -2)
            clean = np.stack([self._clean(n, f) for n, f in zip(arr[:, 0], arr[:, 1],
                                                                   strict=True)])
        else:
            rows = arr.reshape(-1, arr.shape[-1])
            clean = np.stack([self._clean(row, None) for row in rows])
        return self.inner(torch.from_numpy(np.ascontiguousarray(clean, np.float32)).to(device))


def wrap_frontend(fe: Any, kind: str, params: dict[str, Any]) -> Any:
    """``fe`` behind the noise-aware option its params choose (itself for ``none``)."""
    cfg = split_noise_params(kind, params)[1]
    return fe if cfg.reference == "none" else NoiseAwareFrontEnd(fe, cfg)


# --------------------------------------------------------------------------- training


def find_noise_clips(clips: Sequence[Any]) -> list[Any]:
    """The DCASE 2025 noise-only clips of the machine types of some clips.

    Those among ``clips`` (split ``supplemental``, kind ``noise``), else those in each
    machine folder's ``supplemental/`` beside the training clips' ``train/`` folder.
    """
    from soundwatch.datasets.recent import SUPPLEMENTAL_FOLDER, classify_supplemental

    given = [c for c in clips if c.attributes.get("supplemental") == "noise"]
    if given:
        return given
    found: list[Any] = []
    for folder in sorted({Path(c.path).parent.parent / SUPPLEMENTAL_FOLDER for c in clips}):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                clip = classify_supplemental(path.resolve())
                if clip is not None and clip.attributes.get("supplemental") == "noise":
                    found.append(clip)
    return found


def augment_with_noise(wave: np.ndarray, noises: Sequence[np.ndarray], snr_db: float,
                       rng: np.random.Generator) -> np.ndarray:
    """A waveform (``[T]`` or ``[C, T]``) plus a random stretch of a random noise clip.

    The noise is tiled when shorter than the clip, starts at a random offset and is
    scaled so the clip's (first channel's) power is ``snr_db`` above it.
    """
    noise = noises[int(rng.integers(len(noises)))]
    n = wave.shape[-1]
    reps = -(-(n + noise.size) // max(1, noise.size))
    long = np.tile(noise, reps)
    start = int(rng.integers(max(1, long.size - n + 1)))
    part = long[start : start + n]
    sig = float(np.mean(np.square(wave if wave.ndim == 1 else wave[0], dtype=np.float64)))
    gain = np.sqrt(sig / (max(float(np.mean(np.square(part, dtype=np.float64))), 1e-20)
                          * 10.0 ** (snr_db / 10.0)))
    return (wave + gain * part).astype(np.float32)


@dataclass
class NoiseTraining:
    """What the noise-aware options need while a detector trains.

    Attributes:
        config: The option.
        clips: The training clips (noise-only clips among them removed).
        noise_clips: The machine's noise-only clips (when needed).
        reference: The noise reference waveform a fitted detector keeps, or ``None``.
    """

    config: NoiseAwareConfig
    clips: list[Any]
    noise_clips: list[Any] = field(default_factory=list)
    reference: np.ndarray | None = None

    def augmented(self, fe: Any, channel: int | str, seed: int, batch_size: int = 32
                  ) -> tuple[list[np.ndarray], list[int]]:
        """Features of ``noise_augment`` noisy copies of each training clip (not cached).

        Args:
            fe: The front-end (a :class:`NoiseAwareFrontEnd` or a plain one).
            channel: The run's channel.
            seed: Seed of the noise clip, offset and SNR of each copy.
            batch_size: Clips per front-end call.

        Returns:
            The copies' features, and for each the index of its training clip.
        """
        import torch

        from soundwatch.audio import load

        copies = self.config.noise_augment
        if copies == 0:
            return [], []
        noises = [load(c.path, sr=fe.sr, channel=0) for c in self.noise_clips]
        rng = np.random.default_rng(seed)
        feats: list[np.ndarray] = []
        index: list[int] = []
        loader = getattr(fe, "load_clip", None)
        for start in range(0, len(self.clips), batch_size):
            waves, idx = [], []
            for i in range(start, min(start + batch_size, len(self.clips))):
                path = self.clips[i].path
                wave = (loader(path, fe.sr, channel) if loader is not None
                        else load(path, sr=fe.sr, channel=channel))
                for _ in range(copies):
                    snr = float(rng.uniform(self.config.noise_snr_min, self.config.noise_snr_max))
                    waves.append(augment_with_noise(wave, noises, snr, rng))
                    idx.append(i)
            by_len: dict[int, list[int]] = {}
            for k, w in enumerate(waves):
                by_len.setdefault(w.shape[-1], []).append(k)
            out: dict[int, np.ndarray] = {}
            for ks in by_len.values():
                with torch.inference_mode():
                    res = fe(torch.from_numpy(np.stack([waves[k] for k in ks])))
                for k, r in zip(ks, res.detach().cpu().float().numpy(), strict=True):
                    out[k] = np.ascontiguousarray(r)
            feats.extend(out[k] for k in range(len(waves)))
            index.extend(idx)
        log.info("noise augmentation: %d noisy copies of %d clips (%d noise clips)",
                 len(feats), len(self.clips), len(noises))
        return feats, index


def noise_training(params: dict[str, Any] | None, clips: Sequence[Any], sr: int
                   ) -> NoiseTraining:
    """Prepare the noise-aware options of a training (see :class:`NoiseTraining`).

    Args:
        params: The detector's front-end params.
        clips: Its training clips.
        sr: The front-end's sample rate.

    Raises:
        ConfigError: An option needs noise-only clips and the machine has none.
    """
    from soundwatch.audio import load

    cfg = noise_config(params)
    clips = list(clips)
    if not cfg.needs_noise_clips:
        return NoiseTraining(cfg, clips)
    noise_clips = find_noise_clips(clips)
    clips = [c for c in clips if c.attributes.get("supplemental") != "noise"]
    if not noise_clips:
        where = Path(clips[0].path).parent.parent / "supplemental" if clips else "clips"
        raise ConfigError(where, f"reference={cfg.reference}, noise_augment="
                          f"{cfg.noise_augment} needs the machine's noise-only clips "
                          "(DCASE 2025 supplemental/section_XX_noise_*.wav); none found")
    reference = None
    if cfg.reference in NOISE_REFERENCES:
        parts, total = [], 0
        for clip in noise_clips:
            x = load(clip.path, sr=sr, channel=0)
            parts.append(x)
            total += x.size
            if total >= NOISE_REFERENCE_SECONDS * sr:
                break
        reference = np.concatenate(parts)[: int(NOISE_REFERENCE_SECONDS * sr)]
    return NoiseTraining(cfg, clips, noise_clips, reference)
