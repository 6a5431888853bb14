"""Typed configurations of the feature front-ends, their presets and their stable hash.

Kept free of torch so that a cache key can be computed (and tested) cheaply.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from soundwatch.errors import ConfigError
from soundwatch.registry import Registry

if TYPE_CHECKING:
    from soundwatch.features.frontends import FrontEnd

__all__ = [
    "CONFIGS",
    "FRONTENDS",
    "FEATURE_CODE_VERSION",
    "PRESETS",
    "CQTConfig",
    "FramesConfig",
    "LogMelConfig",
    "NOISE_PARAMS",
    "NoiseAwareConfig",
    "STFTConfig",
    "WaveformConfig",
    "config_hash",
    "make_config",
    "resolve",
    "split_noise_params",
]

FRONTENDS: Registry[type[FrontEnd]] = Registry(
    "frontend", modules=("soundwatch.features.frontends",), error=ConfigError
)
"""Registered front-end classes (entry-point group ``soundwatch.frontends`` for plugins).

Declared here, with the configs, so that resolving a name needs no torch; the built-in
classes (:mod:`soundwatch.features.frontends`) register when a name is first looked up.
"""

FEATURE_CODE_VERSION = 1
"""Bumped whenever a front-end's numbers change for the same config (invalidates caches)."""


@dataclass(frozen=True)
class WaveformConfig:
    """Parameters of the ``waveform`` front-end.

    Attributes:
        sr: Sample rate the input is expected at (Hz).
        low_hz: Lower band edge of the Butterworth band-pass; ``None`` with ``high_hz``
            ``None`` means no filter. With only ``high_hz`` set, a low-pass; with only
            ``low_hz``, a high-pass.
        high_hz: Upper band edge (Hz).
        filter_order: Butterworth order (scipy ``butter(N)``; a band-pass has 2N poles).
        design_sr: Sample rate the filter is designed at. ``None`` designs it at ``sr``
            (the band edges are then true frequencies). The seed designed at 30 kHz
            whatever the input rate, which makes the band edges relative to that rate.
        band_gain: Divide the filtered signal by ``sqrt(band / nyquist)`` (the seed's
            compensation for the energy the band-pass removes from white noise).
        standardize: Per-clip zero mean and unit variance (over the clip's own samples,
            before padding).
        length: Fixed output length in samples: longer clips are cropped at the end,
            shorter ones padded with zeros at the end; data is never repeated.
            ``None`` keeps the input length.
        window: Split into windows of this many samples (``[B, n_win, window]``);
            ``None`` returns ``[B, L]``.
        hop: Step between windows; defaults to ``window`` (no overlap). A trailing
            partial window is dropped.
        pad: Zeros added at both ends (after ``length``), e.g. half a window so that
            window ``i`` is centred on sample ``i * hop`` (torchcrepe's framing).
    """

    sr: int = 16000
    low_hz: float | None = None
    high_hz: float | None = None
    filter_order: int = 16
    design_sr: int | None = None
    band_gain: bool = False
    standardize: bool = True
    length: int | None = None
    window: int | None = None
    hop: int | None = None
    pad: int = 0

    def __post_init__(self) -> None:
        _positive(self, "sr", "filter_order")
        if isinstance(self.pad, bool) or not isinstance(self.pad, int) or self.pad < 0:
            raise ConfigError("waveform.pad", f"must be an integer >= 0, got {self.pad!r}")
        _positive_or_none(self, "length", "window", "hop", "design_sr", "low_hz", "high_hz")
        fs = self.design_sr or self.sr
        for edge in ("low_hz", "high_hz"):
            value = getattr(self, edge)
            if value is not None and value >= fs / 2:
                raise ConfigError(f"waveform.{edge}",
                                  f"{value} Hz is not below Nyquist ({fs / 2} Hz)")
        if self.low_hz is not None and self.high_hz is not None and self.low_hz >= self.high_hz:
            raise ConfigError("waveform.low_hz",
                              f"{self.low_hz} is not below high_hz {self.high_hz}")
        if self.hop is not None and self.window is None:
            raise ConfigError("waveform.hop", "hop needs window")


@dataclass(frozen=True)
class STFTConfig:
    """Parameters of the ``stft`` front-end (``torch.stft``, periodic Hann window).

    Attributes:
        sr: Sample rate the input is expected at (Hz).
        n_fft: FFT size.
        hop_length: Step between frames in samples.
        win_length: Window length (``None``: ``n_fft``).
        power: 1 for magnitude, 2 for power.
        center: Pad ``n_fft // 2`` on both sides so frame t is centred on ``t * hop``.
        pad_mode: Padding for ``center`` (``"constant"`` = zeros, librosa 0.11's default).
    """

    sr: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    win_length: int | None = None
    power: float = 2.0
    center: bool = True
    pad_mode: str = "constant"

    def __post_init__(self) -> None:
        _positive(self, "sr", "n_fft", "hop_length", "power")
        _positive_or_none(self, "win_length")
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ConfigError("win_length", f"{self.win_length} exceeds n_fft {self.n_fft}")
        _choice(self, "pad_mode", ("constant", "reflect", "replicate", "circular"))


@dataclass(frozen=True)
class LogMelConfig(STFTConfig):
    """Parameters of the ``logmel`` front-end (defaults: the DCASE baseline).

    Output = ``log_mult * log10(max(amin, mel))`` where ``mel`` is the mel filterbank
    (``librosa.filters.mel``, Slaney scale and norm by default) applied to
    ``|STFT| ** power``; with the defaults (power 2, log_mult 10, amin 1e-10, top_db
    ``None``) this equals ``librosa.power_to_db(melspectrogram(...), ref=1.0, amin=1e-10,
    top_db=None)``.

    Attributes:
        n_mels: Number of mel bands.
        fmin: Lowest filter edge (Hz).
        fmax: Highest filter edge (Hz); ``None``: ``sr / 2``.
        htk: HTK mel scale instead of Slaney.
        mel_norm: ``"slaney"`` (area normalisation, librosa's default) or ``None``.
        log_mult: 10 for a power-like input (``power=2``), 20 for magnitudes (``power=1``).
        amin: Floor applied before the log.
        top_db: If set, clip each clip's values to ``max - top_db`` (librosa's
            ``power_to_db`` default is 80; the DCASE baseline does not clip, hence ``None``).
        normalize: ``"none"``, or ``"minmax"``: scale each clip to 0..1 (the seed's image input).
    """

    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    mel_norm: str | None = "slaney"
    log_mult: float = 10.0
    amin: float = 1e-10
    top_db: float | None = None
    normalize: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "n_mels", "log_mult", "amin")
        _positive_or_none(self, "top_db", "fmax")
        if self.fmin < 0:
            raise ConfigError("fmin", f"must be >= 0, got {self.fmin}")
        fmax = self.fmax if self.fmax is not None else self.sr / 2
        if fmax > self.sr / 2 or self.fmin >= fmax:
            raise ConfigError("fmax", f"need 0 <= fmin < fmax <= sr/2, got {self.fmin}, {fmax}")
        _choice(self, "mel_norm", ("slaney", None))
        _choice(self, "normalize", ("none", "minmax"))


@dataclass(frozen=True)
class FramesConfig(LogMelConfig):
    """Parameters of the ``frames`` front-end: log-mel parameters plus the context size.

    Attributes:
        n_frames: Number ``P`` of consecutive log-mel frames stacked into one vector
            (the DCASE autoencoder baseline uses 5 frames of 128 mels = 640 values).
    """

    n_frames: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "n_frames")


@dataclass(frozen=True)
class CQTConfig:
    """Parameters of the ``cqt`` front-end (nnAudio ``CQT1992v2``; defaults: the seed's).

    The input must already be at ``sr`` (load the audio with that rate).

    Attributes:
        sr: Sample rate the input is expected at (Hz).
        hop_length: Step between frames in samples.
        fmin: Lowest bin centre (Hz).
        fmax: Highest frequency (Hz); sets the number of bins when given.
        n_bins: Number of bins when ``fmax`` is ``None``.
        bins_per_octave: Bins per octave.
        filter_scale: Filter length scale (nnAudio).
        window: Window of the CQT kernels.
        center: Pad so frames are centred.
        pad_mode: ``"reflect"`` (nnAudio's default) or ``"constant"``.
        output_format: ``"Magnitude"`` (the only one offered).
    """

    sr: int = 8000
    hop_length: int = 248
    fmin: float = 2000.0
    fmax: float | None = 4000.0
    n_bins: int = 84
    bins_per_octave: int = 12
    filter_scale: float = 1.0
    window: str = "hann"
    center: bool = True
    pad_mode: str = "reflect"
    output_format: str = "Magnitude"

    def __post_init__(self) -> None:
        _positive(self, "sr", "hop_length", "fmin", "n_bins", "bins_per_octave", "filter_scale")
        _positive_or_none(self, "fmax")
        if self.fmax is not None and not self.fmin < self.fmax <= self.sr / 2:
            raise ConfigError("fmax", f"need fmin < fmax <= sr/2, got {self.fmin}, {self.fmax}")
        _choice(self, "pad_mode", ("reflect", "constant"))
        _choice(self, "output_format", ("Magnitude",))

    @property
    def resolved_n_bins(self) -> int:
        """Number of frequency bins the CQT produces."""
        if self.fmax is None:
            return self.n_bins
        return int(math.ceil(self.bins_per_octave * math.log2(self.fmax / self.fmin)))


def _positive(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not value > 0:
            raise ConfigError(name, f"must be positive, got {value!r}")


def _positive_or_none(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not value > 0:
            raise ConfigError(name, f"must be positive or None, got {value!r}")


def _choice(cfg: Any, name: str, options: tuple[Any, ...]) -> None:
    value = getattr(cfg, name)
    if value not in options:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(map(repr, options))}")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` to the type ``hint`` (YAML / CLI strings are accepted)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except ConfigError as exc:
                errors.append(exc.reason)
        raise ConfigError(name, "; ".join(errors) or f"invalid value {value!r}")
    converters: dict[Any, Callable[[Any], Any]] = {
        bool: _to_bool, int: _to_int, float: _to_float, str: _to_str,
    }
    if hint in converters:
        try:
            return converters[hint](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(name, f"expected {hint.__name__}, got {value!r}") from exc
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    if isinstance(value, str):
        value = float(value) if "." in value or "e" in value.lower() else int(value)
        return _to_int(value)
    return int(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(value)
    return out


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _make_config(cls: type, kind: str, params: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(
            f"frontend {kind}",
            f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(names))}",
        )
    values = {k: _coerce(f"{kind}.{k}", v, hints[k]) for k, v in params.items()}
    return cls(**values)


_PRESETS: dict[str, tuple[str, dict[str, Any], str]] = {
    "waveform_seed": (
        "waveform",
        {"low_hz": 10000.0, "high_hz": 14000.0, "filter_order": 16, "design_sr": 30000,
         "band_gain": True, "standardize": True},
        "the seed's order-16 zero-phase Butterworth 10-14 kHz band-pass designed at 30 kHz",
    ),
    "logmel_seed": (
        "logmel",
        {"n_mels": 64, "power": 1.0, "log_mult": 20.0, "normalize": "minmax"},
        "the seed's image input: 64 mels, magnitude, 20*log10, min-max scaled to 0..1",
    ),
    "cqt_seed": ("cqt", {}, "the seed's CQT: sr 8000, fmin 2000, fmax 4000, hop 248"),
    "frames_dcase": ("frames", {"n_mels": 128, "n_frames": 5},
                     "DCASE autoencoder baseline input: 5 x 128 log-mel frames = 640"),
}


CONFIGS: dict[str, type] = {
    "waveform": WaveformConfig,
    "stft": STFTConfig,
    "logmel": LogMelConfig,
    "cqt": CQTConfig,
    "frames": FramesConfig,
}

PRESETS = _PRESETS


def resolve(name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The front-end kind a name stands for, and its parameters (preset values merged).

    Raises:
        ConfigError: Unknown name.
    """
    if name in PRESETS:
        kind, preset, _ = PRESETS[name]
        return kind, {**preset, **params}
    if name in CONFIGS:
        return name, dict(params)
    if name in FRONTENDS:
        return name, dict(params)
    names = sorted([*FRONTENDS.names(), *PRESETS])
    raise ConfigError("frontend", f"unknown front-end {name!r}; choose from {', '.join(names)}")


def make_config(name: str, **params: Any) -> tuple[str, Any]:
    """Validate parameters for a front-end name; return ``(kind, config)``.

    Raises:
        ConfigError: Unknown name, unknown parameter or invalid value.
    """
    kind, params = resolve(name, params)
    params = split_noise_params(kind, params)[0]  # any front-end takes the noise-aware options
    if kind in CONFIGS:
        return kind, _make_config(CONFIGS[kind], kind, params)
    return kind, _make_config(FRONTENDS.get(kind).config_class, kind, params)


def config_hash(kind: str, config: Any) -> str:
    """Stable sha256 hex digest of kind, config fields (sorted) and :data:`FEATURE_CODE_VERSION`.

    Independent of the process, the Python hash seed, the device and field order.
    """
    payload = {
        "frontend": kind,
        "version": FEATURE_CODE_VERSION,
        "config": dataclasses.asdict(config),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- noise-aware options
# (the processing is soundwatch.features.noise_aware; the typed option lives here, with the
# other front-end configs, so that resolving and hashing a front-end needs neither torch nor
# that module)

TWO_CHANNEL_REFERENCES = ("subtract", "wiener", "gate-far", "near-far", "near+far")
"""Options that read both channels of a two-channel (near, far) clip."""

NOISE_REFERENCES = ("subtract-noise", "gate-noise")
"""Options whose noise reference is the machine's DCASE 2025 noise-only clips."""

REFERENCES = ("none", *TWO_CHANNEL_REFERENCES, "gate", *NOISE_REFERENCES)
"""Values of the front-end parameter ``reference`` (``none``: the front-end as it is)."""

_LOG_KINDS = ("logmel", "frames")


@dataclass(frozen=True)
class NoiseAwareConfig:
    """The noise-aware front-end parameters (given with the front-end's own ones).

    Attributes:
        reference: One of :data:`REFERENCES`. ``subtract`` / ``wiener``: spectral
            subtraction / Wiener-style gain of the near channel by the far one;
            ``gate-far``: noisereduce's spectral gating with the far channel as the noise
            clip; ``near-far``: the near channel's log-mel minus the far one's (``logmel``,
            ``frames``); ``near+far``: both channels' features side by side (bins or
            vector values doubled); ``gate``: spectral gating without reference (one
            channel); ``subtract-noise`` / ``gate-noise``: spectral subtraction / gating
            with the machine's noise-only clips (DCASE 2025 ``supplemental/``) as the
            reference (one channel; kept in the fitted detector).
        far_channel: Index of the far channel; ``None``: the other channel of a
            two-channel file. The near channel is the run's ``--channel`` (0 by default).
        noise_augment: Noisy copies of each training clip (the machine's noise-only clips
            mixed in at random SNRs, seeded); 0: none. Training only.
        noise_snr_min: Lowest SNR (dB) of those copies.
        noise_snr_max: Highest SNR (dB).
    """

    reference: str = "none"
    far_channel: int | None = None
    noise_augment: int = 0
    noise_snr_min: float = 0.0
    noise_snr_max: float = 20.0

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ConfigError("frontend.reference", f"{self.reference!r} is not one of "
                              f"{', '.join(REFERENCES)}")
        if self.noise_augment < 0:
            raise ConfigError("frontend.noise_augment", f"must be >= 0, got "
                              f"{self.noise_augment}")
        if self.noise_snr_min > self.noise_snr_max:
            raise ConfigError("frontend.noise_snr_min", f"{self.noise_snr_min} is above "
                              f"noise_snr_max {self.noise_snr_max}")

    @property
    def two_channel(self) -> bool:
        """Whether the option reads both channels."""
        return self.reference in TWO_CHANNEL_REFERENCES

    @property
    def needs_noise_clips(self) -> bool:
        """Whether training needs the machine's noise-only clips."""
        return self.reference in NOISE_REFERENCES or self.noise_augment > 0

    def key(self) -> dict[str, Any]:
        """The fields that change features (the cache key; augmentation does not)."""
        return {"reference": self.reference, "far_channel": self.far_channel}


NOISE_PARAMS = tuple(f.name for f in dataclasses.fields(NoiseAwareConfig))
"""Front-end parameter names handled here (any front-end accepts them)."""


def split_noise_params(kind: str | None, params: dict[str, Any]
                       ) -> tuple[dict[str, Any], NoiseAwareConfig]:
    """A front-end's params without the noise-aware ones, and those as a config.

    Args:
        kind: The front-end kind (checks what the option needs), or ``None``.
        params: Front-end parameters (YAML / CLI strings accepted).

    Raises:
        ConfigError: An invalid value, or an option the front-end kind cannot give.
    """
    hints = typing.get_type_hints(NoiseAwareConfig)
    given = {k: _coerce(f"frontend.{k}", v, hints[k]) for k, v in params.items()
             if k in NOISE_PARAMS}
    rest = {k: v for k, v in params.items() if k not in NOISE_PARAMS}
    cfg = NoiseAwareConfig(**given)
    if kind is not None and cfg.reference == "near-far" and kind not in _LOG_KINDS:
        raise ConfigError("frontend.reference", f"near-far subtracts log-mels: front-end "
                          f"{kind} is not one of {', '.join(_LOG_KINDS)}")
    if kind == "waveform" and cfg.reference == "near+far":
        raise ConfigError("frontend.reference", "near+far puts features side by side: not "
                          "for the waveform front-end")
    return rest, cfg
