"""Feature front-ends: named, configurable torch modules from a batch of waveforms to features."""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
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
from soundwatch.features.noise_aware import export_reason as noise_export_reason
from soundwatch.features.noise_aware import wrap_frontend

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
    "DFT_MODES",
    "NOT_EXPORTABLE",
    "describe_frontends",
    "frontend_layout",
    "in_onnx_export",
    "list_frontends",
    "not_exportable_reason",
    "register_frontend",
]


register_frontend = FRONTENDS.register

# --------------------------------------------------------------------------- export limits


def in_onnx_export() -> bool:
    """Whether ``torch.onnx.export`` is running (without importing ``torch.onnx``: 0.2 s).

    ``import torch`` leaves ``torch.onnx`` unloaded; an export has always loaded it.
    """
    onnx = sys.modules.get("torch.onnx")
    return onnx is not None and bool(onnx.is_in_onnx_export())


NOT_EXPORTABLE = {
    "cqt": "the nnAudio CQT (a complex convolution with reflect padding per octave) is not "
    "written with ONNX-traceable operators",
}
"""Front-end kinds that cannot be exported to ONNX, with the reason."""

FILTER_REASON = (
    "the waveform band-pass filter (zero-phase IIR, scipy sosfiltfilt) has no ONNX operator"
)
"""Why a ``waveform`` front-end with ``low_hz`` or ``high_hz`` cannot be exported."""


def _export_reason(kind: str, cfg: Any) -> str | None:
    if kind in NOT_EXPORTABLE:
        return NOT_EXPORTABLE[kind]
    if isinstance(cfg, WaveformConfig) and (cfg.low_hz is not None or cfg.high_hz is not None):
        return FILTER_REASON
    return None


def not_exportable_reason(name: str, params: dict[str, Any] | None = None) -> str | None:
    """Why the front-end ``name`` with ``params`` cannot be exported (one line), or ``None``.

    Raises:
        ConfigError: Unknown front-end, parameter or value.
    """
    kind, cfg = make_config(name, **(params or {}))
    return noise_export_reason(params) or _export_reason(kind, cfg)


# --------------------------------------------------------------------------- base class


class FrontEnd(nn.Module):
    """Base class: a named, configured transform from waveforms ``[B, T]`` to features.

    Subclasses are registered with ``@register_frontend(name)`` (which sets ``name``),
    set ``config_class`` (a frozen dataclass of their parameters, with ``sr``) and
    ``layout``, and implement :meth:`forward` and
    :meth:`output_shape`. Filters and windows are registered buffers, so ``.to(device)``
    moves them.

    The same module scores in the library and is traced by the ONNX export
    (:mod:`soundwatch.export`). Where the fast eager operation cannot be traced (numpy
    magnitude, ``torch.stft``, shape-dependent Python branches), ``forward`` branches at that
    operation on :meth:`traced`: true while ``torch.onnx.export`` runs, or when the
    ``traceable`` attribute is set (tests compare both branches). Cutting a long batch into
    chunks is the caller's job (:func:`soundwatch.features.extraction.run_frontend`).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    layout: ClassVar[str] = "bins_time"
    """Output layout: ``"waveform"`` (``[L]`` per clip), ``"bins_time"`` (``[bins, T]``) or
    ``"rows"`` (``[n_vectors, d]``); encoders and poolings read it instead of the name."""
    cpu_chunks: ClassVar[bool] = False
    """Whether a CPU batch is faster computed a few clips at a time (the caller chunks)."""
    traceable: bool = False
    """Compute with the operators the ONNX export traces, also in eager mode (tests)."""

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

    def traced(self) -> bool:
        """Whether ``forward`` takes the traceable branch (ONNX export, or ``traceable``)."""
        return bool(self.traceable) or in_onnx_export()

    def export_reason(self) -> str | None:
        """Why this front-end cannot be exported to ONNX (one line), or ``None``."""
        return _export_reason(self.name, self._config)

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ConfigError(self.name, f"expects waveforms [B, T], got shape {tuple(x.shape)}")
        return x.float()

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
    goes back to the input's device; it has no ONNX operator (:data:`FILTER_REASON`).
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
        if self.traced():
            raise ConfigError(f"frontend {self.name}", f"cannot be traced: {FILTER_REASON}")
        from scipy.signal import sosfiltfilt

        fs = float(cfg.design_sr or cfg.sr)
        sos = _butter_sos(cfg.filter_order, cfg.low_hz, cfg.high_hz, fs)
        y = sosfiltfilt(sos, x.detach().cpu().double().numpy(), axis=-1)
        if cfg.band_gain:
            low = cfg.low_hz or 0.0
            high = cfg.high_hz or fs / 2
            y = y / math.sqrt((high - low) / (fs / 2))
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(x.device)

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        if self.traced():
            std = (x - mean).square().mean(dim=-1, keepdim=True).sqrt()
        else:
            std = x.std(dim=-1, keepdim=True, unbiased=False)
        return (x - mean) / (std + 1e-8)

    def _crop_or_pad(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """``x`` cut or zero-padded to ``length`` samples."""
        if self.traced():  # the input's length is dynamic in the graph: pad, then slice
            return nn.functional.pad(x, (0, length))[..., :length]
        if x.shape[-1] > length:
            return x[..., :length]
        if x.shape[-1] < length:
            return nn.functional.pad(x, (0, length - x.shape[-1]))
        return x

    def _windows(self, x: torch.Tensor, window: int, hop: int) -> torch.Tensor:
        """``[B, n_windows, window]`` every ``hop`` samples (none when ``x`` is shorter)."""
        if self.traced():  # a Gather of starts counted from the dynamic length
            length = torch._shape_as_tensor(x)[-1]
            n_win = torch.clamp(torch.div(length - window, hop, rounding_mode="floor") + 1,
                                min=0)
            starts = torch.arange(n_win, device=x.device) * hop
            return x[:, starts[:, None] + torch.arange(window, device=x.device)[None, :]]
        if x.shape[-1] < window:
            return x.new_zeros((x.shape[0], 0, window))
        return x.unfold(-1, window, hop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` -> ``[B, L]`` or ``[B, n_windows, window]``."""
        cfg = self.config
        x = self._filter(self._check_input(x))
        if cfg.standardize:
            x = self._standardize(x)
        if cfg.length is not None:
            x = self._crop_or_pad(x, cfg.length)
        if cfg.pad:
            x = nn.functional.pad(x, (cfg.pad, cfg.pad))
        if cfg.window is not None:
            x = self._windows(x, cfg.window, cfg.hop or cfg.window)
        return x.contiguous()


# --------------------------------------------------------------------------- STFT / log-mel


def _n_frames(cfg: STFTConfig, num_samples: int) -> int:
    if cfg.center:  # n_fft // 2 samples padded at both ends (one fewer frame for odd n_fft)
        num_samples += 2 * (cfg.n_fft // 2)
    return max(0, 1 + (num_samples - cfg.n_fft) // cfg.hop_length)


def _magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``|spec|`` of a complex tensor, as a new real tensor."""
    if spec.device.type == "cpu" and not spec.requires_grad:
        # torch's CPU complex abs is a scalar hypot loop, ~7x slower than numpy's SIMD one
        return torch.from_numpy(np.abs(spec.numpy()))
    return spec.abs()


DFT_MODES = ("fft2", "conv", "stft")
"""Operators of the traced spectrogram (:class:`STFT`'s ``dft``)."""


def _factor(n: int) -> int:
    """The largest factor of ``n`` not above its square root (1 for a prime)."""
    for f in range(int(math.sqrt(n)), 1, -1):
        if n % f == 0:
            return f
    return 1


def _frame_slices(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Frames ``[B, F, n_fft]`` every ``hop`` samples of ``[B, L]`` (no padding), traceable.

    When ``hop`` divides ``n_fft`` the frames are ``n_fft / hop`` shifted slices of
    ``hop``-sample chunks concatenated (cheap in onnxruntime); otherwise a Gather.
    """
    if n_fft % hop == 0:
        r = n_fft // hop
        chunks = x[:, : x.shape[-1] // hop * hop].reshape(x.shape[0], -1, hop)
        count = chunks.shape[1] - r + 1
        return torch.cat([chunks[:, i : count + i] for i in range(r)], dim=-1)
    count = torch.div(torch._shape_as_tensor(x)[-1] - n_fft, hop, rounding_mode="floor") + 1
    index = (torch.arange(count) * hop)[:, None] + torch.arange(n_fft)[None, :]
    return x[:, index]


@register_frontend("stft")
class STFT(FrontEnd):
    """Magnitude (``power=1``) or power (``power=2``) spectrogram ``[B, n_fft//2+1, frames]``.

    Eager: ``torch.stft`` and numpy's magnitude. Traced (:meth:`FrontEnd.traced`), the same
    numbers (float32) from one of three operators, ``dft``:

    - ``"fft2"``: one Cooley-Tukey step written as matrix products: ``n_fft = N1 * N2``, a
      DFT of size ``N1`` (MatMul), twiddle factors, a DFT of size ``N2`` (MatMul). About 5x
      fewer multiplications than a direct DFT and onnxruntime's fast GEMM: the default when
      ``n_fft`` has a factor pair with both factors >= 4;
    - ``"conv"``: a strided ``Conv`` with the windowed cosine and sine kernels (a direct
      DFT), the default for other sizes;
    - ``"stft"``: the ONNX ``STFT`` operator (opset 17). onnxruntime's kernel is several
      times slower than both, and runs a less precise direct DFT when ``n_fft`` is not a
      power of two.

    Args:
        config: The front-end's configuration.
        dft: ``"auto"`` (as above), ``"fft2"``, ``"conv"`` or ``"stft"``.
    """

    layout = "bins_time"
    config_class = STFTConfig
    cpu_chunks = True  # a 64-clip STFT's intermediates fit no cache; 2-3x faster in chunks

    def __init__(self, config: STFTConfig, dft: str = "auto") -> None:
        super().__init__(config)
        win = config.win_length or config.n_fft
        self.register_buffer("window", torch.hann_window(win, periodic=True), persistent=False)
        self._dft_buffers(config, dft)

    def _dft_buffers(self, config: STFTConfig, dft: str) -> None:
        """The traced branch's constants: the padded window and ``dft``'s matrices."""
        n_fft = config.n_fft
        n1 = _factor(n_fft)
        if dft == "auto":
            dft = "fft2" if n1 >= 4 else "conv"
        if dft not in DFT_MODES:
            raise ConfigError("dft", f"{dft!r} is not one of 'auto', "
                              f"{', '.join(map(repr, DFT_MODES))}")
        if dft == "fft2" and n1 < 2:
            raise ConfigError("dft", f"fft2 needs a composite n_fft, got {n_fft}")
        self.dft = dft
        win_length = config.win_length or n_fft
        window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
        left = (n_fft - win_length) // 2  # torch.stft centres a shorter window
        window = nn.functional.pad(window, (left, n_fft - win_length - left))
        self.register_buffer("full_window", window.float(), persistent=False)
        if dft == "conv":
            k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
            n = torch.arange(n_fft, dtype=torch.float64)[None, :]
            angle = 2 * math.pi * ((k * n) % n_fft) / n_fft
            kernels = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])
            self.register_buffer("kernels", kernels.float()[:, None, :], persistent=False)
        if dft == "fft2":
            n2 = n_fft // n1
            self.n1, self.n2 = n1, n2
            a = torch.arange(n1, dtype=torch.float64)
            b = torch.arange(n2, dtype=torch.float64)
            stage1 = 2 * math.pi * torch.outer(a, a) / n1  # [k1, m1]
            twiddle = 2 * math.pi * torch.outer(a, b) / n_fft  # [k1, m2]
            stage2 = 2 * math.pi * torch.outer(b, b) / n2  # [m2, k2]
            for name, value in (("cos1", torch.cos(stage1)), ("sin1", torch.sin(stage1)),
                                ("tw_cos", torch.cos(twiddle)), ("tw_sin", torch.sin(twiddle)),
                                ("cos2", torch.cos(stage2)), ("sin2", torch.sin(stage2)),
                                ("window2d", window.reshape(n1, n2))):
                self.register_buffer(name, value.float(), persistent=False)

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        """``(n_fft // 2 + 1, frames)``."""
        return (self.config.n_fft // 2 + 1, _n_frames(self.config, num_samples))

    def _fft2_power(self, x: torch.Tensor) -> torch.Tensor:
        """``|DFT|^2`` of the frames of padded waveforms ``[B, L]`` -> ``[B, bins, frames]``.

        Sample ``m = m1 * N2 + m2`` of a frame, bin ``k = k1 + N1 * k2``.
        """
        n_fft, hop = self.config.n_fft, self.config.hop_length
        frames = _frame_slices(x, n_fft, hop).reshape(x.shape[0], -1, self.n1, self.n2)
        frames = frames * self.window2d
        re1 = torch.matmul(self.cos1, frames)  # [B, F, k1, m2]
        im1 = -torch.matmul(self.sin1, frames)
        re2 = re1 * self.tw_cos + im1 * self.tw_sin  # times exp(-i * twiddle)
        im2 = im1 * self.tw_cos - re1 * self.tw_sin
        re = torch.matmul(re2, self.cos2) + torch.matmul(im2, self.sin2)  # [B, F, k1, k2]
        im = torch.matmul(im2, self.cos2) - torch.matmul(re2, self.sin2)
        power = (re.square() + im.square()).transpose(-1, -2)  # [B, F, k2, k1]: k order
        power = power.reshape(x.shape[0], -1, n_fft)[..., : n_fft // 2 + 1]
        return power.transpose(1, 2)

    def _traced_power(self, x: torch.Tensor) -> torch.Tensor:
        """``|STFT|^2`` of padded waveforms with traceable operators (``dft``)."""
        cfg = self.config
        if self.dft == "fft2":
            return self._fft2_power(x)
        if self.dft == "conv":
            spec = nn.functional.conv1d(x.unsqueeze(1), self.kernels, stride=cfg.hop_length)
            bins = cfg.n_fft // 2 + 1
            return spec[:, :bins].square() + spec[:, bins:].square()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # return_complex=False is deprecated in eager
            spec = torch.stft(x, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                              win_length=cfg.n_fft, window=self.full_window, center=False,
                              return_complex=False)
        return spec.square().sum(dim=-1)

    def _spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.center:
            pad = cfg.n_fft // 2
            if cfg.pad_mode == "constant":
                x = nn.functional.pad(x, (pad, pad))
            else:  # torch.stft only pads with the given mode; do it ourselves for clarity
                x = nn.functional.pad(x.unsqueeze(1), (pad, pad), mode=cfg.pad_mode).squeeze(1)
        if self.traced():
            power = self._traced_power(x)
            if cfg.power == 2.0:
                return power
            if cfg.power == 1.0:
                return power.sqrt()
            return power.pow(cfg.power / 2.0)
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
        return self._spectrogram(self._check_input(x))


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
    and the optional per-clip min-max scaling.
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

    def __init__(self, config: LogMelConfig, dft: str = "auto") -> None:
        super().__init__(config, dft)
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
        return self._logmel(self._check_input(x))


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
        p = self.config.n_frames
        mel = self._logmel(self._check_input(x))  # [B, M, F]
        if self.traced():
            # slices keep the number of frames dynamic in the graph; a clip shorter than
            # n_frames frames gives no vector (a negative end would count from the end)
            n_vec = torch.clamp(torch._shape_as_tensor(mel)[-1] - (p - 1), min=0)
            parts = [mel[..., i : i + n_vec] for i in range(p)]
            stacked = torch.stack(parts, dim=1)  # [B, P, M, n_vec]
            b, _, m, n_vec = stacked.shape
            return stacked.permute(0, 3, 1, 2).reshape(b, n_vec, p * m)
        b, m, f = mel.shape
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
    kind, config = make_config(name, **params)
    return wrap_frontend(FRONTENDS.get(kind)(config), kind, params)
