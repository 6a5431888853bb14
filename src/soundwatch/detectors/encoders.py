"""Encoders: registered networks (plain nn.Modules) with their input preparation.

An encoder entry function takes an :class:`InputSpec` (the shape of what the front-end
gives) and its own keyword parameters and returns an :class:`EncoderModel`: input
preparation (standardisation, image rendering, augmentation) + a network with
``forward_features`` (embedding) and ``forward``. Objectives add heads and train it;
frozen pretrained encoders are used as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from soundwatch.errors import DetectorError
from soundwatch.registry import Registry

__all__ = [
    "ENCODERS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EncoderModel",
    "InputPrep",
    "InputSpec",
    "check_whole",
    "describe_encoders",
    "encoder_info",
    "list_encoders",
    "register_encoder",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREP_MODES = ("none", "channels", "logmel2d", "image")
IMAGE_RANGES = ("minmax", "standard")

ENCODERS: Registry[Callable[..., Any]] = Registry(
    "encoder", modules=("soundwatch.detectors.encoders", "soundwatch.detectors.pretrained",
                         "soundwatch.detectors.own_pretrained",
                         "soundwatch.detectors.beats", "soundwatch.detectors.hf"),
    error=DetectorError,
)
"""Registered encoder entry functions ``(spec, **params) -> EncoderModel``."""


def register_encoder(
    name: str, *, layout: str = "windows", trainable: bool = True,
    time_multiple: Callable[[dict[str, Any]], int] | None = None,
    trains: Callable[[dict[str, Any]], bool] | None = None,
    prep_mode: Callable[[dict[str, Any]], str] | None = None,
) -> Callable[[Any], Any]:
    """Register an encoder entry function.

    Args:
        name: Registry name.
        layout: Input it reads: ``"rows"`` (vectors ``[B, d]``, e.g. stacked frames) or
            ``"windows"`` (``[B, C, T]`` windows of a ``[bins, T]`` or waveform feature).
        trainable: False for frozen pretrained encoders (no objective, no training).
        time_multiple: ``params -> k``: window lengths must be multiples of ``k``.
        trains: ``params -> bool``: whether the encoder with these parameters is trained
            by an objective (default: ``trainable``), e.g. a pretrained encoder that is
            fine-tuned when a parameter asks for it.
        prep_mode: ``params -> mode`` of its input preparation (:class:`InputPrep`:
            ``"rows"``, ``"channels"``, ``"image"``; default from ``layout``), so that
            others (the exporter) know it without building the network.
    """

    def decorator(fn: Any) -> Any:
        fn.layout = layout
        fn.trainable = trainable
        fn.time_multiple = time_multiple or (lambda params: 1)
        fn.trains = trains or (lambda params: trainable)
        fn.prep_mode = prep_mode or (lambda params: "rows" if layout == "rows" else "channels")
        return ENCODERS.register(name)(fn)

    return decorator


def encoder_info(name: str) -> Any:
    """The registered entry function (``layout``, ``trainable``, ``time_multiple``, ``trains``)."""
    return ENCODERS.get(name)


def list_encoders() -> list[str]:
    """Names of the registered encoders."""
    return ENCODERS.names()


def describe_encoders() -> dict[str, str]:
    """Name -> one-line description."""
    return ENCODERS.describe()


@dataclass(frozen=True)
class InputSpec:
    """What an encoder is built for.

    Attributes:
        layout: ``"rows"`` or ``"windows"``.
        channels: Row size (rows) or feature bins (windows; 1 for a waveform).
        window: Window length in frames (samples for a waveform); ``None`` for rows.
        num_outputs: Width of the network's output layer (classifier objectives).
    """

    layout: str
    channels: int
    window: int | None = None
    num_outputs: int = 1


class EncoderModel(nn.Module):
    """Input preparation + network (+ a head added by an objective).

    Args:
        prep: Input preparation (``None``: identity).
        network: A network with ``forward_features`` (embedding) and ``forward``.
        head: A head on the embedding (e.g. a cosine-margin classifier), or ``None``.
    """

    def __init__(self, prep: nn.Module | None, network: nn.Module,
                 head: nn.Module | None = None) -> None:
        super().__init__()
        self.prep = prep if prep is not None else nn.Identity()
        self.network = network
        self.head = head

    @property
    def num_features(self) -> int:
        """Size of :meth:`embed`'s output (the network declares it, timm style)."""
        return int(self.network.num_features)

    def prepared(self, x: torch.Tensor) -> torch.Tensor:
        """The network input for features ``x``."""
        return self.prep(x)

    def forward(self, x: torch.Tensor) -> Any:
        """Network output for features ``x``."""
        return self.network(self.prep(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, D]`` of features ``x``."""
        return self.network.forward_features(self.prep(x))

    def set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Give the input preparation its per-channel training statistics (if it uses them)."""
        if isinstance(self.prep, InputPrep):
            self.prep.set_stats(mean, std)


class InputPrep(nn.Module):
    """Features ``[B, C, T]`` -> network input, with training-time augmentation.

    Modes:

    - ``none``: unchanged (rows, or windows fed as they are);
    - ``channels``: standardised per channel (training mean/std), ``[B, C, T]`` (Wave1DCNN);
    - ``logmel2d``: standardised, ``[B, 1, C, T]`` (WaveVisionNet on the log-mel itself);
    - ``image``: coloured with a colormap lookup table and resized by
      :func:`soundwatch.features.render_batch`, ImageNet-normalised, ``[B, 3, S, S]``;
      the colours span each image's own min..max (``image_range="minmax"``, as the
      seed's ``imshow``) or a fixed -3..3 of the standardised features
      (``"standard"``: levels stay comparable between images).

    In training (``augment``): a random circular time shift per item, an optional
    random time reversal, then SpecAugment-style masks (``n_masks`` time and frequency
    bands of random width up to ``time_mask`` / ``freq_mask`` of the axis, set to 0,
    the mean after normalisation).

    Args:
        mode: One of :data:`PREP_MODES`.
        channels: Feature channels ``C`` (bins).
        image_size: Side of the square image (``image`` mode).
        cmap: Colormap (``image`` mode).
        image_range: ``"minmax"`` or ``"standard"`` (``image`` mode).
        augment: Augment in training mode.
        time_shift: Random circular time shift.
        time_mask: Largest time mask, as a fraction of the time axis.
        freq_mask: Largest frequency mask, as a fraction of the frequency axis.
        n_masks: Masks per axis.
        flip: Random time reversal.
    """

    def __init__(self, mode: str, channels: int, image_size: int = 224, cmap: str = "viridis",
                 image_range: str = "minmax", augment: bool = True, time_shift: bool = True,
                 time_mask: float = 0.1, freq_mask: float = 0.1, n_masks: int = 2,
                 flip: bool = False) -> None:
        super().__init__()
        if mode not in PREP_MODES:
            raise DetectorError("prep", f"mode must be one of {PREP_MODES}, got {mode!r}")
        self.mode = mode
        self.image_size = int(image_size)
        self.cmap = cmap
        self.image_range = image_range
        self.augment = augment
        self.time_shift = time_shift
        self.time_mask = float(time_mask)
        self.freq_mask = float(freq_mask)
        self.n_masks = int(n_masks)
        self.flip = flip
        self.register_buffer("mean", torch.zeros(channels, 1))
        self.register_buffer("std", torch.ones(channels, 1))
        self.register_buffer("rgb_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("rgb_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Set the per-channel standardisation statistics."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(-1, 1))
        self.std.copy_(torch.as_tensor(np.maximum(std, 1e-5), dtype=torch.float32).view(-1, 1))

    @staticmethod
    def _shift(x: torch.Tensor) -> torch.Tensor:
        shifts = torch.randint(0, x.shape[-1], (x.shape[0],)).tolist()
        return torch.stack([torch.roll(x[i], s, dims=-1) for i, s in enumerate(shifts)])

    def _mask(self, x: torch.Tensor, axis: int, fraction: float) -> torch.Tensor:
        size = x.shape[axis]
        width = int(size * fraction)
        if width < 1 or self.n_masks < 1:
            return x
        positions = torch.arange(size, device=x.device)
        keep = torch.ones(x.shape[0], size, dtype=torch.bool, device=x.device)
        for _ in range(self.n_masks):
            w = torch.randint(0, width + 1, (x.shape[0], 1), device=x.device)
            start = (torch.rand(x.shape[0], 1, device=x.device) * (size - w + 1)).floor()
            keep &= ~((positions >= start) & (positions < start + w))
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        shape[axis] = size
        return x * keep.view(shape).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prepare a batch of features ``[B, C, T]``."""
        train_aug = self.training and self.augment
        if train_aug and self.time_shift:
            x = self._shift(x)
        if train_aug and self.flip:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip.view(-1, 1, 1), x.flip(-1), x)
        if self.mode == "image":
            from soundwatch.features.render import render_batch

            size = (self.image_size, self.image_size)
            x = x.detach().float()
            vrange: tuple[float, float] | None = None
            if self.image_range == "standard":
                x, vrange = (x - self.mean) / self.std, (-3.0, 3.0)
            image = render_batch(x, cmap=self.cmap, size=size, vrange=vrange).float() / 255.0
            out = (image - self.rgb_mean) / self.rgb_std
            freq_axis = 2
        elif self.mode == "none":
            out, freq_axis = x, 1
        else:
            out = (x - self.mean) / self.std
            freq_axis = 1
            if self.mode == "logmel2d":
                out = out.unsqueeze(1)
                freq_axis = 2
        if train_aug:
            out = self._mask(out, out.dim() - 1, self.time_mask)
            out = self._mask(out, freq_axis, self.freq_mask)
        return out




# --------------------------------------------------------------------------- entries


def _need(spec: InputSpec, layout: str, name: str) -> None:
    if spec.layout != layout:
        raise DetectorError(f"encoder {name}", f"reads {layout}, but the front-end gives "
                            f"{spec.layout} (choose a front-end with {layout} output)")


def check_whole(name: str, key: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` of encoder ``name``'s parameter ``key``, checked to be a whole number in range.

    Raises:
        DetectorError: Not an integer (a bool neither), below ``low`` or above ``high``.
    """
    if (isinstance(value, bool) or not isinstance(value, int) or value < low
            or (high is not None and value > high)):
        span = f"from {low} to {high}" if high is not None else f">= {low}"
        raise DetectorError(f"encoder {name}.{key}", f"must be a whole number {span}, got "
                            f"{value!r}")
    return value


def _positive(name: str, **values: Any) -> None:
    for key, value in values.items():
        check_whole(name, key, value, 1)


def _prep(spec: InputSpec, mode: str, **kwargs: Any) -> InputPrep:
    return InputPrep(mode, spec.channels, **kwargs)


@register_encoder("ae", layout="rows")
def ae(spec: InputSpec, *, hidden: int = 128, n_hidden: int = 4, latent_dim: int = 8
       ) -> EncoderModel:
    """DCASE Task 2 baseline dense autoencoder (Linear+BatchNorm+ReLU) on stacked frames.

    Args:
        spec: Rows of ``n_mels * n_frames`` values (the ``frames`` front-end).
        hidden: Hidden layer width.
        n_hidden: Hidden layers in the encoder (and in the decoder).
        latent_dim: Bottleneck size (the embedding).
    """
    from soundwatch.detectors.networks.ae import DenseAutoencoder

    _need(spec, "rows", "ae")
    _positive("ae", hidden=hidden, n_hidden=n_hidden, latent_dim=latent_dim)
    net = DenseAutoencoder(spec.channels, hidden=[hidden] * n_hidden, latent_dim=latent_dim)
    return EncoderModel(None, net)


@register_encoder("vae1d", time_multiple=lambda p: 2 ** int(p.get("n_down", 2)))
def vae1d(spec: InputSpec, *, hidden: int = 128, latent_dim: int = 16, n_down: int = 2
          ) -> EncoderModel:
    """Variational autoencoder with 1-D convolutions over standardised log-mel windows.

    Args:
        spec: Windows of ``[bins, frames]`` (frames a multiple of ``2 ** n_down``).
        hidden: Convolution channels.
        latent_dim: Latent channels per time step.
        n_down: Stride-2 stages.
    """
    from soundwatch.detectors.networks.vae1d import ConvVAE1d

    _need(spec, "windows", "vae1d")
    _positive("vae1d", hidden=hidden, latent_dim=latent_dim, n_down=n_down)
    net = ConvVAE1d(spec.channels, hidden=hidden, latent_dim=latent_dim, n_down=n_down)
    return EncoderModel(_prep(spec, "channels", augment=False), net)


@register_encoder("unet1d", time_multiple=lambda p: 2 ** int(p.get("n_stages", 4)))
def unet1d(spec: InputSpec, *, base_channels: int = 64, n_stages: int = 4) -> EncoderModel:
    """The seed's U-Net-style 1-D conv autoencoder (additive skips) on standardised windows.

    Args:
        spec: Windows of ``[bins, frames]`` (frames a multiple of ``2 ** n_stages``).
        base_channels: Channels of the first stage (doubled at each stage).
        n_stages: Encoder stages.
    """
    from soundwatch.detectors.networks.unet1d import UNetAE1d

    _need(spec, "windows", "unet1d")
    _positive("unet1d", base_channels=base_channels, n_stages=n_stages)
    net = UNetAE1d(spec.channels, channels=[base_channels * 2**i for i in range(n_stages)])
    return EncoderModel(_prep(spec, "channels", augment=False), net)


@register_encoder("cnn1d")
def cnn1d(spec: InputSpec, *, preset: str = "small", network_params: dict[str, Any] | None = None,
          augment: bool = True, time_mask: float = 0.1, freq_mask: float = 0.1,
          flip: bool = False) -> EncoderModel:
    """Wave1DCNN (Conv1d + GeM + BiGRU) on standardised feature channels (bins or waveform).

    Args:
        spec: Windows of ``[bins, frames]`` (or ``[1, samples]`` of a waveform).
        preset: Sizes: ``small`` (trains on a CPU), ``tiny`` or ``seed``.
        network_params: Overrides of
            :class:`~soundwatch.detectors.networks.cnn1d.Wave1DCNNConfig` fields.
        augment: Random circular time shift and time/frequency masks in training.
        time_mask: Largest time mask (fraction of the window; 2 masks).
        freq_mask: Largest frequency mask (fraction of the bins; 2 masks).
        flip: Random time reversal in training.
    """
    from soundwatch.detectors.networks.cnn1d import Wave1DCNN, resolve_cnn1d_config

    _need(spec, "windows", "cnn1d")
    config = _config(resolve_cnn1d_config, "cnn1d", preset, network_params)
    prep = _prep(spec, "channels", augment=augment, time_mask=time_mask,
                 freq_mask=freq_mask, flip=flip)
    return EncoderModel(prep, Wave1DCNN(spec.channels, spec.num_outputs, config))


@register_encoder("wavevision", prep_mode=lambda p: "image" if p.get("input", "image") == "image"
                  else "logmel2d")
def wavevision(spec: InputSpec, *, input: str = "image", image_size: int = 224,
               cmap: str = "viridis", image_range: str = "minmax", preset: str = "small",
               network_params: dict[str, Any] | None = None, augment: bool = True,
               time_mask: float = 0.1, freq_mask: float = 0.1, flip: bool = False
               ) -> EncoderModel:
    """WaveVisionNet (EfficientNet-style CNN + LambdaConv) on log-mel images.

    Args:
        spec: Windows of ``[bins, frames]``.
        input: ``"image"`` (the log-mel coloured with ``cmap`` by a lookup table, resized
            to ``image_size`` square, ImageNet-normalised) or ``"logmel"`` (the
            standardised single-channel log-mel at its own size).
        image_size: Side of the square image.
        cmap: Colormap of the image.
        image_range: ``"minmax"`` (each image's own range, as the seed's ``imshow``) or
            ``"standard"`` (a fixed -3..3 of the per-bin standardised features).
        preset: Sizes: ``small``, ``tiny`` or ``seed`` (EfficientNetV2-rw_s-like).
        network_params: Overrides of
            :class:`~soundwatch.detectors.networks.wavevision.WaveVisionConfig` fields.
        augment: Random circular time shift and time/frequency masks in training.
        time_mask: Largest time mask (fraction of the width; 2 masks).
        freq_mask: Largest frequency mask (fraction of the height; 2 masks).
        flip: Random horizontal flip in training (the seed's augmentation).
    """
    from soundwatch.detectors.networks.wavevision import WaveVisionNet, resolve_wavevision_config

    _need(spec, "windows", "wavevision")
    if input not in ("image", "logmel"):
        raise DetectorError("encoder wavevision.input", f"{input!r} is not 'image' or 'logmel'")
    if image_range not in IMAGE_RANGES:
        raise DetectorError("encoder wavevision.image_range", f"{image_range!r} is not one of "
                            f"{', '.join(IMAGE_RANGES)}")
    _positive("wavevision", image_size=image_size)
    if input == "image":
        from soundwatch.features.render import colormap_lut

        try:
            colormap_lut(cmap)
        except Exception as exc:
            raise DetectorError("encoder wavevision.cmap", str(exc)) from exc
    config = _config(resolve_wavevision_config, "wavevision", preset, network_params)
    mode = "image" if input == "image" else "logmel2d"
    prep = _prep(spec, mode, image_size=image_size, cmap=cmap, image_range=image_range,
                 augment=augment, time_mask=time_mask, freq_mask=freq_mask, flip=flip)
    in_channels = 3 if mode == "image" else 1
    return EncoderModel(prep, WaveVisionNet(in_channels, spec.num_outputs, config))


def _config(resolve: Callable[..., Any], name: str, preset: str,
            overrides: dict[str, Any] | None) -> Any:
    try:
        return resolve(preset, **(overrides or {}))
    except DetectorError:
        raise
    except Exception as exc:  # ConfigError / ValueError from the network's config
        raise DetectorError(f"encoder {name}", str(exc)) from exc
