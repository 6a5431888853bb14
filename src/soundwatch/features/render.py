"""Feature images: a colormap lookup table and array resizing instead of a matplotlib figure."""

from __future__ import annotations

import io
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.errors import ConfigError

__all__ = ["colormap_lut", "image_format", "plot_clip", "render", "render_batch",
           "render_file", "to_db"]

log = logging.getLogger(__name__)

LUT_SIZE = 256
RENDERERS = ("lut", "matplotlib")
ORIGINS = ("lower", "upper")
FRAMES = ("none", "seed")
SEED_INNER = (308, 775)
"""The map's pixels inside the seed's figure (10x4 in at 100 dpi, default subplot box)."""
SEED_BORDER = 10
"""The seed's white border (``bbox_inches="tight", pad_inches=0.1`` at 100 dpi)."""
IMAGE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp",
                 ".pdf": "pdf", ".svg": "svg"}
"""Output formats by file extension (matplotlib and Pillow write them)."""

VRange = None | str | tuple[float, float]


@lru_cache(maxsize=32)
def colormap_lut(cmap: str = "viridis") -> np.ndarray:
    """A colormap sampled to a 256-entry ``uint8`` RGB table ``[256, 3]`` (cached).

    The entries are exactly what matplotlib puts in an image for each of its 256 levels
    (``Colormap(levels, bytes=True)``, which truncates ``value * 255``).

    Raises:
        ConfigError: Unknown colormap name.
    """
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError as exc:
        raise ConfigError("cmap", f"unknown colormap {cmap!r}") from exc
    if cm.N != LUT_SIZE:
        cm = cm.resampled(LUT_SIZE)
    lut = np.asarray(cm(np.arange(LUT_SIZE), bytes=True))[:, :3]
    lut.setflags(write=False)
    return lut


@lru_cache(maxsize=32)
def _torch_lut(cmap: str, device: str) -> Any:
    import torch

    return torch.from_numpy(colormap_lut(cmap).copy()).to(device)


def _check_options(size: Any, vrange: VRange, origin: str) -> None:
    if size is not None:
        if len(size) != 2 or any(int(v) < 1 for v in size):
            raise ConfigError("size", f"expected (height, width) of positive ints, got {size!r}")
    if isinstance(vrange, str):
        if vrange != "minmax":
            raise ConfigError("vrange", f"expected None, 'minmax' or (lo, hi), got {vrange!r}")
    elif vrange is not None:
        if len(vrange) != 2 or not float(vrange[0]) < float(vrange[1]):
            raise ConfigError("vrange", f"expected (lo, hi) with lo < hi, got {vrange!r}")
    if origin not in ORIGINS:
        raise ConfigError("origin", f"expected 'lower' or 'upper', got {origin!r}")


def _seed_nearest(shape: tuple[int, ...]) -> bool:
    """Whether matplotlib's ``"auto"`` interpolation picks ``"nearest"`` for this map.

    It does when the map is magnified more than 3 times (or exactly 1 or 2 times) along
    both axes, and smooths (``"hanning"``) otherwise.
    """
    if len(shape) != 2:
        return False
    rows, cols = int(shape[0]), int(shape[1])

    def plain(disp: int, n: int) -> bool:
        return n > 0 and (disp > 3 * n or disp == n or disp == 2 * n)

    return plain(SEED_INNER[1], cols) and plain(SEED_INNER[0], rows)


def _seed_frame(rgb: Any, size: tuple[int, int] | None) -> Any:
    """Put ``[B, 3, 308, 775]`` images in the seed's white border and resize the whole."""
    import torch

    b = SEED_BORDER
    framed = torch.nn.functional.pad(rgb, (b, b, b, b), value=255)
    if size is None or tuple(size) == tuple(framed.shape[-2:]):
        return framed.contiguous()
    return _resized(framed, size)


def _resized(rgb: Any, size: tuple[int, int]) -> Any:
    """``[B, 3, H, W]`` uint8 images resized to ``size`` (bilinear, antialiased), as uint8.

    On the CPU the uint8 planes take torch's integer resize; elsewhere it works in float.
    """
    import torch

    if rgb.device.type != "cpu":
        rgb = rgb.float()
    rgb = torch.nn.functional.interpolate(
        rgb, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False,
        antialias=True,
    )
    if rgb.dtype != torch.uint8:
        rgb = rgb.round_().clamp_(0, 255).to(torch.uint8)
    return rgb.contiguous()


def render_batch(
    features: Any,
    cmap: str = "viridis",
    size: tuple[int, int] | None = None,
    vrange: VRange = None,
    origin: str = "lower",
    frame: str = "none",
) -> Any:
    """Colour a batch of 2-D features as RGB images, on the features' device.

    Args:
        features: Tensor (or array) ``[B, F, T]``: bins by frames.
        cmap: matplotlib colormap name.
        size: Output ``(height, width)``; ``None`` keeps one pixel per bin and frame.
            The colour lookup comes first, then the RGB planes are resized (bilinear,
            antialiased when shrinking), like matplotlib's ``"rgba"`` interpolation stage.
        vrange: ``None`` or ``"minmax"``: each image's own min..max (what ``imshow``
            does by default); ``(lo, hi)``: a fixed range such as ``(-80, 0)`` dB, values
            outside are clipped.
        origin: ``"lower"`` (default): bin 0, the lowest frequency, on the bottom row;
            ``"upper"``: bin 0 on the top row (the seed's images).
        frame: ``"none"``, or ``"seed"``: the seed's whole matplotlib image, the map drawn
            at 775x308 inside a 10 px white border (795x328), then resized to ``size``
            (what the seed fed its WaveVisionNet), without matplotlib.

    Returns:
        ``uint8`` tensor ``[B, 3, H, W]``.

    Raises:
        ConfigError: Bad shape or option.
    """
    import torch

    _check_options(size, vrange, origin)
    if frame not in FRAMES:
        raise ConfigError("frame", f"expected 'none' or 'seed', got {frame!r}")
    if frame == "seed":
        x = torch.as_tensor(features)
        if _seed_nearest(tuple(x.shape[-2:])):
            # matplotlib draws a map magnified more than 3x both ways without smoothing
            cells = render_batch(x, cmap=cmap, size=None, vrange=vrange, origin=origin)
            inner = torch.nn.functional.interpolate(cells.float(), size=SEED_INNER,
                                                    mode="nearest-exact")
            inner = inner.round_().clamp_(0, 255).to(torch.uint8)
        else:
            inner = render_batch(x, cmap=cmap, size=SEED_INNER, vrange=vrange, origin=origin)
        return _seed_frame(inner, size)
    x = torch.as_tensor(features)
    if x.dim() != 3:
        raise ConfigError("features", f"expected [B, F, T], got shape {tuple(x.shape)}")
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ConfigError("features", f"empty feature map {tuple(x.shape)}")
    x = torch.nan_to_num(x.float())
    if isinstance(vrange, tuple | list):
        lo = torch.full((x.shape[0], 1, 1), float(vrange[0]), device=x.device)
        hi = torch.full((x.shape[0], 1, 1), float(vrange[1]), device=x.device)
    else:
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    x = torch.where(span > 0, (x - lo) / torch.where(span > 0, span, 1.0), torch.zeros_like(x))
    x = x.clamp_(0.0, 1.0)
    if origin == "lower":
        x = x.flip(-2)
    # matplotlib's level: floor(v * N), with v == 1 in the top level
    idx = (x * LUT_SIZE).long().clamp_(0, LUT_SIZE - 1)
    if size is None or tuple(size) == tuple(x.shape[-2:]):
        return _torch_lut(cmap, str(x.device))[idx].permute(0, 3, 1, 2).contiguous()
    # colour first, then resize the RGB planes (matplotlib's "rgba" interpolation stage);
    # uint8 channels-last planes take torch's vectorised integer resize (20x the float one)
    return _resized(_torch_lut(cmap, str(x.device))[idx].permute(0, 3, 1, 2), size)


def _matplotlib_image(
    features: np.ndarray,
    cmap: str,
    vrange: VRange,
    origin: str,
    pad_inches: float = 0.1,
) -> np.ndarray:
    """The seed's path: 10x4 in figure, imshow aspect auto, axis off, PNG, decode."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    vmin = vmax = None
    if isinstance(vrange, tuple | list):
        vmin, vmax = float(vrange[0]), float(vrange[1])
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.imshow(features, aspect="auto", cmap=cmap, origin=origin, vmin=vmin, vmax=vmax)
    ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, bbox_inches="tight", pad_inches=pad_inches)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"))


def render(
    features: Any,
    cmap: str = "viridis",
    size: tuple[int, int] | None = None,
    vrange: VRange = None,
    renderer: str = "lut",
    origin: str = "lower",
    frame: str = "none",
) -> np.ndarray:
    """Colour one 2-D feature map as an RGB image.

    The ``"lut"`` renderer is the fast path (:func:`render_batch` on one image): it
    matches the ``"matplotlib"`` renderer (the seed's ``imshow`` + ``savefig`` + PNG
    decode) to within 2/255 on average once the latter's white border is cropped, at a
    small fraction of the cost, and does not depend on figure size or DPI.

    Args:
        features: Array or tensor ``[F, T]`` (bins by frames).
        cmap: matplotlib colormap name.
        size: Output ``(height, width)``. ``None``: one pixel per bin and frame for
            ``"lut"``; the figure's own size (about 775x308 with a 10 px white border)
            for ``"matplotlib"``. Otherwise the matplotlib image is resized with PIL
            (bilinear), border included, as the seed did.
        vrange: ``None``/``"minmax"`` per-image range, or a fixed ``(lo, hi)``.
        renderer: ``"lut"`` or ``"matplotlib"``.
        origin: ``"lower"`` (low frequencies at the bottom, the default) or ``"upper"``
            (bin 0 at the top, as the seed's ``imshow`` call drew it).
        frame: ``"seed"`` with the ``"lut"`` renderer: the seed's whole image, white
            border included (see :func:`render_batch`); the ``"matplotlib"`` renderer
            always draws it.

    Returns:
        ``uint8`` array ``[H, W, 3]``.

    Raises:
        ConfigError: Bad shape or option.
    """
    if renderer not in RENDERERS:
        raise ConfigError("renderer", f"expected 'lut' or 'matplotlib', got {renderer!r}")
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    arr = np.asarray(features, dtype=np.float32)
    if arr.ndim != 2:
        raise ConfigError("features", f"expected a 2-D [F, T] map, got shape {arr.shape}")
    if renderer == "lut":
        out = render_batch(arr[None], cmap=cmap, size=size, vrange=vrange, origin=origin,
                           frame=frame)
        return out[0].permute(1, 2, 0).cpu().numpy()
    if frame not in FRAMES:
        raise ConfigError("frame", f"expected 'none' or 'seed', got {frame!r}")
    _check_options(size, vrange, origin)
    colormap_lut(cmap)  # validates the name with a ConfigError
    image = _matplotlib_image(arr, cmap, vrange, origin)
    if size is not None:
        from PIL import Image

        pil = Image.fromarray(image).resize((int(size[1]), int(size[0])), Image.BILINEAR)
        image = np.asarray(pil)
    return image


def to_db(features: Any, power: float) -> Any:
    """``10 * log10`` of a power map or ``20 * log10`` of a magnitude map (floor 1e-10)."""
    import torch

    mult = 10.0 if power == 2.0 else 20.0 / power
    return mult * torch.log10(torch.clamp(torch.as_tensor(features), min=1e-10))


def image_format(out: str | os.PathLike[str]) -> str:
    """The image format an output path's extension asks for.

    Raises:
        ConfigError: An extension that is not one of :data:`IMAGE_FORMATS`.
    """
    ext = Path(out).suffix.lower()
    if ext not in IMAGE_FORMATS:
        raise ConfigError(out, f"unsupported image format {ext or '(no extension)'!r}; use "
                          + ", ".join(IMAGE_FORMATS))
    return IMAGE_FORMATS[ext]


def _save_image(image: np.ndarray, out: Path, fmt: str) -> None:
    """Write an RGB array in ``fmt`` (Pillow; SVG through a matplotlib figure)."""
    from PIL import Image

    from soundwatch.atomic import atomic_path

    with atomic_path(out) as tmp:
        if fmt == "svg":
            from matplotlib.figure import Figure

            h, w = image.shape[:2]
            fig = Figure(figsize=(w / 100, h / 100), dpi=100)
            fig.figimage(image, resize=False)
            fig.savefig(tmp, format="svg", dpi=100)
        else:
            Image.fromarray(image).save(tmp, format=fmt.upper())


def _features_of(wav: str | os.PathLike[str], frontend: str, channel: int | str) -> Any:
    """``(front-end, [F, T] features as numpy, in dB for STFT and CQT)`` of one file."""
    import torch

    from soundwatch.audio import load
    from soundwatch.features.frontends import create_frontend

    fe = create_frontend(frontend)
    wave = load(wav, sr=fe.sr, channel=channel)
    with torch.inference_mode():
        feats = fe(torch.from_numpy(wave)[None])[0]
    if feats.dim() != 2:
        raise ConfigError("frontend", f"{frontend} gives {feats.dim()}-D features; "
                          "choose one with 2-D output (logmel, stft, cqt, frames)")
    if fe.name == "frames":
        feats = feats.T  # vectors along x, like time
    if fe.name in ("stft", "cqt"):
        feats = to_db(feats, getattr(fe.config, "power", 1.0))
    return fe, feats.detach().cpu().numpy(), len(wave)


def _axes_figure(fe: Any, feats: np.ndarray, n_samples: int, cmap: str, vrange: VRange,
                 title: str) -> Any:
    """A readable spectrogram: time (s), frequency (Hz), colour bar (dB)."""
    import librosa.display
    from matplotlib.figure import Figure

    cfg = fe.config
    sr = int(getattr(cfg, "sr", fe.sr))
    hop = int(getattr(cfg, "hop_length", 512))
    kwargs: dict[str, Any] = {"sr": sr, "hop_length": hop, "x_axis": "time", "cmap": cmap}
    if fe.name in ("logmel",):
        kwargs.update(y_axis="mel", fmin=float(getattr(cfg, "fmin", 0.0)),
                      fmax=getattr(cfg, "fmax", None) or sr / 2)
        unit = "dB" if getattr(cfg, "normalize", "none") == "none" else "scaled"
    elif fe.name == "stft":
        kwargs.update(y_axis="linear")
        unit = "dB"
    elif fe.name == "cqt":
        kwargs.update(y_axis="cqt_hz", fmin=float(getattr(cfg, "fmin", 32.7)),
                      bins_per_octave=int(getattr(cfg, "bins_per_octave", 12)))
        unit = "dB"
    else:
        kwargs.pop("x_axis")
        unit = "value"
    if isinstance(vrange, tuple | list):
        kwargs.update(vmin=float(vrange[0]), vmax=float(vrange[1]))
    fig = Figure(figsize=(10, 4), dpi=100)
    ax = fig.subplots()
    mesh = librosa.display.specshow(feats, ax=ax, **kwargs)
    cbar = fig.colorbar(mesh, ax=ax, format="%+.0f" if unit == "dB" else None)
    cbar.set_label(unit)
    if "y_axis" in kwargs:
        ax.set_ylabel("frequency (Hz)")
    if "x_axis" in kwargs:
        ax.set_xlabel("time (s)")
    else:
        ax.set_xlabel("vector")
        ax.set_ylabel("feature")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def render_file(
    wav: str | os.PathLike[str],
    out: str | os.PathLike[str],
    frontend: str = "logmel",
    renderer: str = "lut",
    size: tuple[int, int] | None = None,
    cmap: str = "viridis",
    vrange: VRange = None,
    channel: int | str = 0,
    *,
    axes: bool = False,
    frame: str = "none",
    origin: str = "lower",
    title: str | None = None,
) -> tuple[int, int]:
    """Render one audio file's features to an image file (written atomically).

    STFT and CQT magnitudes are converted to dB first; other 2-D front-ends are drawn
    as they are. The file is loaded at the front-end's sample rate. The format follows
    the extension of ``out`` (:data:`IMAGE_FORMATS`).

    Args:
        wav: Audio file.
        out: Image path (``.png``, ``.jpg``, ``.jpeg``, ``.webp``, ``.pdf``, ``.svg``).
        frontend: Front-end name (see :func:`~soundwatch.features.list_frontends`).
        renderer: ``"lut"`` or ``"matplotlib"`` (model-input images).
        size: Output ``(height, width)`` of a model-input image.
        cmap: Colormap.
        vrange: As in :func:`render`.
        channel: Channel to load.
        axes: Draw a readable spectrogram instead: time in s, frequency in Hz, a colour
            bar in dB (``size`` and ``renderer`` do not apply).
        frame: ``"seed"``: the seed's whole image with its white border (see :func:`render`).
        origin: ``"lower"`` or ``"upper"`` (the seed's images have bin 0 on top).
        title: Title of an ``axes`` image (default: the file's name and the front-end).

    Returns:
        The image's ``(height, width)`` in pixels.

    Raises:
        AudioError: The file cannot be read.
        ConfigError: Unknown front-end, option or image format, or a front-end without
            2-D output.
    """
    from soundwatch.atomic import atomic_path

    out = Path(out)
    fmt = image_format(out)
    fe, feats, n_samples = _features_of(wav, frontend, channel)
    if axes:
        fig = _axes_figure(fe, feats, n_samples, cmap, vrange,
                           title or f"{Path(wav).name} ({frontend})")
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt)
        width, height = fig.canvas.get_width_height()
        log.info("wrote %s (%dx%d, axes)", out, height, width)
        return int(height), int(width)
    image = render(feats, cmap=cmap, size=size, vrange=vrange, renderer=renderer,
                   origin=origin, frame=frame)
    _save_image(image, out, fmt)
    log.info("wrote %s (%dx%d)", out, image.shape[0], image.shape[1])
    return int(image.shape[0]), int(image.shape[1])


def plot_clip(
    wav: str | os.PathLike[str], out: str | os.PathLike[str], channel: int | str = 0,
    sr: int | None = None,
) -> Path:
    """The seed's demo-notebook panel of one clip: waveform, STFT, CQT and log-mel.

    Each panel has its axes and units: amplitude against time (s); STFT and CQT
    magnitudes and the 64-band log-mel power in dB against time (s) and frequency (Hz).

    Args:
        wav: Audio file.
        out: Image path (format from the extension, :data:`IMAGE_FORMATS`).
        channel: Channel to load.
        sr: Analysis sample rate (default: the file's own).

    Returns:
        The image written.

    Raises:
        AudioError: The file cannot be read.
        ConfigError: Unsupported image format.
    """
    import librosa
    import librosa.display
    from matplotlib.figure import Figure

    from soundwatch.atomic import atomic_path
    from soundwatch.audio import load

    out = Path(out)
    fmt = image_format(out)
    x = load(wav, sr=sr, channel=channel)
    if sr is None:
        from soundwatch.audio import info

        sr = info(wav).samplerate
    n_fft = 1024 if len(x) >= 1024 else 2 ** int(np.log2(max(len(x), 64)))
    hop = n_fft // 2
    fig = Figure(figsize=(11, 11), dpi=90)
    axes = fig.subplots(4, 1)
    t = np.arange(len(x)) / sr
    axes[0].plot(t, x, lw=0.5)
    axes[0].set_xlim(0, len(x) / sr)
    axes[0].set(title="waveform", xlabel="time (s)", ylabel="amplitude")
    stft = librosa.amplitude_to_db(np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop)),
                                   ref=np.max)
    m = librosa.display.specshow(stft, sr=sr, hop_length=hop, x_axis="time", y_axis="linear",
                                 ax=axes[1], cmap="magma")
    fig.colorbar(m, ax=axes[1], format="%+.0f dB")
    axes[1].set(title=f"STFT magnitude (n_fft {n_fft}, hop {hop})", ylabel="frequency (Hz)",
                xlabel="time (s)")
    fmin = 32.70  # C1, librosa's default
    n_bins = int(min(84, np.floor(12 * np.log2((sr / 2) / fmin)) - 1))
    cqt_hop = 256  # a multiple of 2 ** (octaves - 1), as librosa's CQT needs
    cqt = librosa.amplitude_to_db(np.abs(librosa.cqt(x, sr=sr, hop_length=cqt_hop, fmin=fmin,
                                                     n_bins=n_bins)), ref=np.max)
    m = librosa.display.specshow(cqt, sr=sr, hop_length=cqt_hop, x_axis="time",
                                 y_axis="cqt_hz", fmin=fmin, ax=axes[2], cmap="magma")
    fig.colorbar(m, ax=axes[2], format="%+.0f dB")
    axes[2].set(title=f"CQT magnitude ({n_bins} bins, 12 per octave)",
                ylabel="frequency (Hz)", xlabel="time (s)")
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sr, n_fft=n_fft,
                                                             hop_length=hop, n_mels=64),
                              ref=np.max)
    m = librosa.display.specshow(mel, sr=sr, hop_length=hop, x_axis="time", y_axis="mel",
                                 ax=axes[3], cmap="magma")
    fig.colorbar(m, ax=axes[3], format="%+.0f dB")
    axes[3].set(title="log-mel power (64 bands)", ylabel="frequency (Hz)", xlabel="time (s)")
    fig.suptitle(f"{Path(wav).name} ({sr} Hz, {len(x) / sr:.2f} s)")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=fmt)
    log.info("wrote %s", out)
    return out
