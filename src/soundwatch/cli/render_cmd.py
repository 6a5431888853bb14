"""``soundwatch render`` and ``plot``: draw one audio file's features as an image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soundwatch.cli.app import app


@app.command()
def render(
    wav: Annotated[Path, typer.Argument(help="Audio file (WAV, FLAC...).")],
    out: Annotated[Path, typer.Argument(
        help="Image to write (atomically); the format follows the extension: .png, .jpg, "
        ".jpeg, .webp, .pdf or .svg.")],
    frontend: Annotated[str, typer.Option(
        "--frontend", "-f", help="Front-end: logmel, logmel_seed, stft, cqt...")] = "logmel",
    axes: Annotated[bool, typer.Option(
        "--axes", help="A readable spectrogram: time (s), frequency (Hz), colour bar (dB), "
        "instead of a model-input image.")] = False,
    renderer: Annotated[str, typer.Option(
        "--renderer", help="lut (fast colour table) or matplotlib (the seed's path).")] = "lut",
    frame: Annotated[str, typer.Option(
        "--frame", help="none, or seed: the seed's whole image with its white border "
        "(the lut renderer reproduces the matplotlib one).")] = "none",
    size: Annotated[tuple[int, int] | None, typer.Option(
        "--size", metavar="H W", help="Output height and width in pixels.")] = None,
    cmap: Annotated[str, typer.Option("--cmap", help="matplotlib colormap name.")] = "viridis",
    vrange: Annotated[tuple[float, float] | None, typer.Option(
        "--vrange", metavar="LO HI",
        help="Fixed value range (e.g. -80 0 dB); default: each image's min..max.")] = None,
    origin: Annotated[str, typer.Option(
        "--origin", help="lower (low frequencies at the bottom) or upper (bin 0 on top, "
        "as the seed drew it).")] = "lower",
    channel: Annotated[str, typer.Option("--channel", help="Channel index, or 'mean'.")] = "0",
) -> None:
    """Draw a clip's features as an image: a model input, or with --axes a readable plot."""
    from soundwatch.features.render import render_file

    chan: int | str = int(channel) if channel.lstrip("-").isdigit() else channel
    height, width = render_file(
        wav, out, frontend=frontend, renderer=renderer, size=size or None, cmap=cmap,
        vrange=vrange or None, channel=chan, axes=axes, frame=frame, origin=origin,
    )
    kind = "axes" if axes else renderer
    typer.echo(f"{out} ({height}x{width}, {frontend}, {kind})")


@app.command()
def plot(
    wav: Annotated[Path, typer.Argument(help="Audio file (WAV, FLAC...).")],
    out: Annotated[Path | None, typer.Argument(
        help="Image to write (.png, .jpg, .webp, .pdf, .svg); default: <clip>_plot.png "
        "beside the clip.")] = None,
    channel: Annotated[str, typer.Option("--channel", help="Channel index, or 'mean'.")] = "0",
    sr: Annotated[int | None, typer.Option(
        "--sr", help="Analysis sample rate (default: the file's own).")] = None,
) -> None:
    """Look at a recording: waveform, STFT, CQT and log-mel, with axes and units."""
    from soundwatch.features.render import plot_clip

    chan: int | str = int(channel) if channel.lstrip("-").isdigit() else channel
    target = out if out is not None else wav.with_name(f"{wav.stem}_plot.png")
    typer.echo(str(plot_clip(wav, target, channel=chan, sr=sr)))
