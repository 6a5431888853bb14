"""Feature front-ends: named, configurable torch modules from a batch of waveforms to features."""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from soundwatch.errors import ConfigError
from soundwatch.features.configs import (
    FEATURE_CODE_VERSION,
    FRONTENDS,
    PRESETS,
    CQTConfig,
    FramesConfig,
    LogMelConfig,
    STFTConfig,
    WaveformConfig,
    config_hash,
    make_config,
)

__all__ = [
    "FEATURE_CODE_VERSION",
    "CQT",
    "CQTConfig",
    "Frames",
    "FramesConfig",
    "FrontEnd",
    "LogMel",
    "LogMelConfig",
    "STFT",
    "STFTConfig",
    "Waveform",
    "WaveformConfig",
    "create_frontend",
    "FRONTENDS",
    "describe_frontends",
    "frontend_layout",
    "list_frontends",
    "register_frontend",
]


register_frontend = FRONTENDS.register

# --------------------------------------------------------------------------- base class

#: Input samples per chunk on the CPU (see :meth:`FrontEnd._by_chunks`).
CPU_CHUNK_SAMPLES = 1 << 18


class FrontEnd(nn.Module):
    """Base class: a named, configured transform from waveforms ``[B, T]`` to features.

    Subclasses are registered with ``@register_frontend(name)`` (which sets ``name``),
    set ``config_class`` (a frozen dataclass of their parameters, with ``sr``) and
    ``layout``, and implement :meth:`forward` and
    :meth:`output_shape`. Filters and windows are registered buffers, so ``.to(device)``
    moves them.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    layout: ClassVar[str] = "bins_time"
    """Output layout: ``"waveform"`` (``[L]`` per clip), ``"bins_time"`` (``[bins, T]``) or
    ``"rows"`` (``[n_vectors, d]``); encoders and poolings read it instead of the name."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self._config = config

    @property
    def config(self) -> Any:
        """The frozen dataclass of this front-end's parameters."""
        return self._config

    @property
    def sr(self) -> int:
        """Sample rate the input waveforms must have."""
        return int(self._config.sr)

    def config_dict(self) -> dict[str, Any]:
        """The configuration as a plain dict (JSON-friendly)."""
        return dataclasses.asdict(self._config)

    def config_hash(self) -> str:
        """Stable hex digest of name, config and feature-code version (the cache key).

        Independent of the process, the Python hash seed, the device and field order.
        """
        return config_hash(self.name, self._config)

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """Shape of one clip's features (no batch dimension) for a clip of ``num_samples``."""
        raise NotImplementedError

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ConfigError(self.name, f"expects waveforms [B, T], got shape {tuple(x.shape)}")
        return x.float()

    def _by_chunks(self, fn: Any, x: torch.Tensor) -> torch.Tensor:
        """``fn(x)`` computed a few clips at a time on the CPU (one call elsewhere).

        A 64-clip STFT's intermediates (hundreds of MB) do not fit in any cache; chunks of
        about ``CPU_CHUNK_SAMPLES`` input samples do, which makes the CPU path 2-3x faster.
        """
        if x.device.type != "cpu" or x.dim() != 2:
            return fn(x)
        rows = max(1, CPU_CHUNK_SAMPLES // max(1, x.shape[-1]))
        if rows >= x.shape[0]:
            return fn(x)
        return torch.cat([fn(chunk) for chunk in x.split(rows)])

    def extra_repr(self) -> str:
        """The name and config, shown by ``repr``."""
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config_dict().items())
        return f"name={self.name!r}, {fields}"


# --------------------------------------------------------------------------- waveform


@lru_cache(maxsize=32)
def _butter_sos(order: int, low: float | None, high: float | None, fs: float) -> np.ndarray:
    from scipy.signal import butter

    if low is not None and high is not None:
        return butter(order, [low, high], btype="bandpass", output="sos", fs=fs)
    if low is not None:
        return butter(order, low, btype="highpass", output="sos", fs=fs)
    return butter(order, high, btype="lowpass", output="sos", fs=fs)


@register_frontend("waveform")
class Waveform(FrontEnd):
    """Optional zero-phase Butterworth filter, per-clip standardisation, crop/pad, windows.

    The filter runs on the CPU with ``scipy.signal.sosfiltfilt`` (float64) and the result
    goes back to the input's device.
    """

    layout = "waveform"
    config_class = WaveformConfig

    def _length(self, num_samples: int) -> int:
        """Samples after cropping/padding to ``length`` and adding ``pad`` at both ends."""
        base = self.config.length if self.config.length is not None else num_samples
        return base + 2 * self.config.pad

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """``(L,)`` or ``(n_windows, window)``."""
        length = self._length(num_samples)
        if self.config.window is None:
            return (length,)
        hop = self.config.hop or self.config.window
        n_win = max(0, (length - self.config.window) // hop + 1)
        return (n_win, self.config.window)

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.low_hz is None and cfg.high_hz is None:
            return x
        from scipy.signal import sosfiltfilt

        fs = float(cfg.design_sr or cfg.sr)
        sos = _butter_sos(cfg.filter_order, cfg.low_hz, cfg.high_hz, fs)
        y = sosfiltfilt(sos, x.detach().cpu().double().numpy(), axis=-1)
        if cfg.band_gain:
            low = cfg.low_hz or 0.0
            high = cfg.high_hz or fs / 2
            y = y / math.sqrt((high - low) / (fs / 2))
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` -> ``[B, L]`` or ``[B, n_windows, window]``."""
        cfg = self.config
        x = self._filter(self._check_input(x))
        if cfg.standardize:
            mean = x.mean(dim=-1, keepdim=True)
            std = x.std(dim=-1, keepdim=True, unbiased=False)
            x = (x - mean) / (std + 1e-8)
        length = self._length(x.shape[-1]) - 2 * cfg.pad
        if x.shape[-1] > length:
            x = x[..., :length]
        elif x.shape[-1] < length:
            x = torch.nn.functional.pad(x, (0, length - x.shape[-1]))
        if cfg.pad:
            x = torch.nn.functional.pad(x, (cfg.pad, cfg.pad))
            length += 2 * cfg.pad
        if cfg.window is not None:
            hop = cfg.hop or cfg.window
            if length < cfg.window:
                return x.new_zeros((x.shape[0], 0, cfg.window))
            x = x.unfold(-1, cfg.window, hop)
        return x.contiguous()


# --------------------------------------------------------------------------- STFT / log-mel


def _n_frames(cfg: STFTConfig, num_samples: int) -> int:
    if cfg.center:
        return 1 + num_samples // cfg.hop_length
    return max(0, 1 + (num_samples - cfg.n_fft) // cfg.hop_length)


def _magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``|spec|`` of a complex tensor, as a new real tensor."""
    if spec.device.type == "cpu" and not spec.requires_grad:
        # torch's CPU complex abs is a scalar hypot loop, ~7x slower than numpy's SIMD one
        return torch.from_numpy(np.abs(spec.numpy()))
    return spec.abs()


@register_frontend("stft")
class STFT(FrontEnd):
    """Magnitude (``power=1``) or power (``power=2``) spectrogram ``[B, n_fft//2+1, frames]``."""

    layout = "bins_time"
    config_class = STFTConfig

    def __init__(self, config: STFTConfig) -> None:
        super().__init__(config)
        win = config.win_length or config.n_fft
        self.register_buffer("window", torch.hann_window(win, periodic=True), persistent=False)

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """``(n_fft // 2 + 1, frames)``."""
        return (self.config.n_fft // 2 + 1, _n_frames(self.config, num_samples))

    def _spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        x = self._check_input(x)
        if cfg.center and cfg.pad_mode != "constant":
            # torch.stft only pads with the given mode; do it ourselves for clarity
            pad = cfg.n_fft // 2
            x = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode=cfg.pad_mode).squeeze(1)
        elif cfg.center:
            pad = cfg.n_fft // 2
            x = torch.nn.functional.pad(x, (pad, pad))
        spec = torch.stft(
            x,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length or cfg.n_fft,
            window=self.window.to(x.device),
            center=False,
            return_complex=True,
        )
        mag = _magnitude(spec)
        if cfg.power == 1.0:
            return mag
        if cfg.power == 2.0:
            return mag.square_()
        return mag.pow_(cfg.power)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` -> spectrogram ``[B, n_fft//2+1, frames]``."""
        return self._by_chunks(self._spectrogram, self._check_input(x))


@lru_cache(maxsize=16)
def _mel_basis(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, htk: bool, norm: str | None
) -> np.ndarray:
    import librosa

    return librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
        dtype=np.float32,
    )


def log_compress(mel: torch.Tensor, cfg: LogMelConfig) -> torch.Tensor:
    """Mel energies ``[..., n_mels, frames]`` -> the log-mel of ``cfg`` (dB, floor, scaling).

    ``log_mult * log10(max(mel, amin))``, then the ``top_db`` floor below each clip's peak
    and the optional per-clip min-max scaling. Shared with the ONNX export's twin.
    """
    out = cfg.log_mult * torch.log10(torch.clamp(mel, min=cfg.amin))
    if cfg.top_db is not None:
        peak = out.amax(dim=(-2, -1), keepdim=True)
        out = torch.maximum(out, peak - cfg.top_db)
    if cfg.normalize == "minmax":
        lo = out.amin(dim=(-2, -1), keepdim=True)
        hi = out.amax(dim=(-2, -1), keepdim=True)
        out = (out - lo) / torch.clamp(hi - lo, min=1e-12)
    return out


@register_frontend("logmel")
class LogMel(STFT):
    """Log-mel spectrogram ``[B, n_mels, frames]`` (librosa-compatible numbers)."""

    layout = "bins_time"
    config_class = LogMelConfig

    def __init__(self, config: LogMelConfig) -> None:
        super().__init__(config)
        mel = _mel_basis(config.sr, config.n_fft, config.n_mels, config.fmin, config.fmax,
                         config.htk, config.mel_norm)
        self.register_buffer("mel_basis", torch.from_numpy(mel.copy()), persistent=False)

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """``(n_mels, frames)``."""
        return (self.config.n_mels, _n_frames(self.config, num_samples))

    def _logmel(self, x: torch.Tensor) -> torch.Tensor:
        spec = self._spectrogram(x)
        return log_compress(torch.matmul(self.mel_basis.to(spec.device), spec), self.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` -> log-mel ``[B, n_mels, frames]``."""
        return self._by_chunks(self._logmel, self._check_input(x))


@register_frontend("frames")
class Frames(LogMel):
    """Stacks ``n_frames`` consecutive log-mel frames: ``[B, n_vectors, n_mels * n_frames]``.

    Vector ``v`` is ``concat(mel[:, v], mel[:, v+1], ..., mel[:, v+P-1])``, as in the
    DCASE autoencoder baseline; ``n_vectors = frames - P + 1``.
    """

    layout = "rows"
    config_class = FramesConfig

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """``(n_vectors, n_mels * n_frames)``."""
        frames = _n_frames(self.config, num_samples)
        p = self.config.n_frames
        return (max(0, frames - p + 1), self.config.n_mels * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` -> stacked frames ``[B, n_vectors, n_mels * n_frames]``."""
        cfg = self.config
        mel = self._by_chunks(self._logmel, self._check_input(x))  # [B, M, F]
        b, m, f = mel.shape
        p = cfg.n_frames
        if f < p:
            return mel.new_zeros((b, 0, m * p))
        windows = mel.unfold(-1, p, 1)  # [B, M, n_vec, P]
        return windows.permute(0, 2, 3, 1).reshape(b, f - p + 1, p * m).contiguous()


# --------------------------------------------------------------------------- CQT


@register_frontend("cqt")
class CQT(FrontEnd):
    """Constant-Q magnitude ``[B, n_bins, frames]`` through nnAudio's ``CQT1992v2``.

    The input must be sampled at ``config.sr``; nothing is resampled here.
    """

    layout = "bins_time"
    config_class = CQTConfig

    def __init__(self, config: CQTConfig) -> None:
        super().__init__(config)
        import warnings

        from nnAudio.features import CQT1992v2

        with warnings.catch_warnings():
            # nnAudio warns "If fmax is given, n_bins will be ignored": documented here
            warnings.simplefilter("ignore", SyntaxWarning)
            self.cqt = self._build(CQT1992v2, config)

    @staticmethod
    def _build(factory: Any, config: CQTConfig) -> nn.Module:
        return factory(
            sr=config.sr,
            hop_length=config.hop_length,
            fmin=config.fmin,
            fmax=config.fmax,
            n_bins=config.n_bins,
            bins_per_octave=config.bins_per_octave,
            filter_scale=config.filter_scale,
            window=config.window,
            center=config.center,
            pad_mode=config.pad_mode,
            output_format=config.output_format,
            verbose=False,
        )

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """``(n_bins, frames)``."""
        cfg = self.config
        if cfg.center:
            frames = 1 + num_samples // cfg.hop_length
        else:
            frames = 1 + (num_samples - self._kernel_len) // cfg.hop_length
        return (cfg.resolved_n_bins, frames)

    @property
    def _kernel_len(self) -> int:
        return int(self.cqt.cqt_kernels_real.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` -> CQT magnitude ``[B, n_bins, frames]``."""
        x = self._check_input(x)
        return self.cqt(x)


# --------------------------------------------------------------------------- registry

def list_frontends() -> list[str]:
    """Names accepted by :func:`create_frontend` (registered kinds and presets), sorted."""
    return sorted([*FRONTENDS.names(), *PRESETS])


def describe_frontends() -> dict[str, str]:
    """One-line description of each front-end name."""
    out = FRONTENDS.describe()
    out.update({name: f"{kind} preset: {text}" for name, (kind, _, text) in PRESETS.items()})
    return dict(sorted(out.items()))


def frontend_layout(name: str) -> str:
    """The output layout of a front-end name (a kind or a preset)."""
    kind = PRESETS[name][0] if name in PRESETS else name
    return FRONTENDS.get(kind).layout


def create_frontend(name: str, **params: Any) -> FrontEnd:
    """Build a front-end by name.

    Args:
        name: One of :func:`list_frontends` (``waveform``, ``stft``, ``logmel``, ``cqt``,
            ``frames``, a preset such as ``logmel_seed``, or a registered plug-in).
        **params: Fields of that front-end's config (override a preset's values).
            Strings such as ``"128"`` or ``"none"`` are converted to the field's type.

    Returns:
        The front-end module (on the CPU; ``.to(device)`` moves it); behind a
        :class:`~soundwatch.features.noise_aware.NoiseAwareFrontEnd` when ``reference``
        chooses a noise-aware option.

    Raises:
        ConfigError: Unknown name, unknown parameter or invalid value.
    """
    from soundwatch.features.noise_aware import wrap_frontend

    kind, config = make_config(name, **params)
    return wrap_frontend(FRONTENDS.get(kind)(config), kind, params)
