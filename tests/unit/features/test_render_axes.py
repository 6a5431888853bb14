"""render --axes, output formats by extension, the seed frame on the LUT path, and plot."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers.cli import run_cli
from soundwatch.errors import ConfigError
from soundwatch.features.render import image_format, render

MAGIC = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF", "pdf": b"%PDF"}


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "webp", "pdf", "svg"])
@pytest.mark.parametrize("axes", [False, True])
def test_format_follows_the_extension(monkeypatch, capsys, tmp_path, write_wav, tone_noise, ext,
                                      axes):
    wav = write_wav("a.wav", tone_noise(1.0))
    out = tmp_path / f"a.{ext}"
    code, _, err = run_cli(monkeypatch, capsys, "render", wav, out, *(["--axes"] if axes else []))
    assert code == 0, err
    data = out.read_bytes()
    fmt = image_format(out)
    if fmt == "svg":
        assert b"<svg" in data[:500]
    else:
        assert data.startswith(MAGIC[fmt]), (ext, data[:8])


def test_unknown_extension_is_refused_in_one_line(monkeypatch, capsys, tmp_path, write_wav,
                                                 tone_noise):
    wav = write_wav("a.wav", tone_noise(1.0))
    code, _, err = run_cli(monkeypatch, capsys, "render", wav, tmp_path / "a.bmpx")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {tmp_path / 'a.bmpx'}: unsupported image format '.bmpx'; use .png, .jpg, "
        ".jpeg, .webp, .pdf, .svg"]
    assert not (tmp_path / "a.bmpx").exists()
    with pytest.raises(ConfigError, match="no extension"):
        image_format(tmp_path / "noext")


def test_axes_image_is_a_readable_figure(monkeypatch, capsys, tmp_path, write_wav, tone_noise):
    """A figure with axes, ticks and a colour bar: much wider than the bare map, not uniform."""
    wav = write_wav("a.wav", tone_noise(1.0))
    bare, axes = tmp_path / "bare.png", tmp_path / "axes.png"
    assert run_cli(monkeypatch, capsys, "render", wav, bare)[0] == 0
    code, out, _ = run_cli(monkeypatch, capsys, "render", wav, axes, "--axes", "-f", "stft")
    assert code == 0 and "axes" in out
    img = np.asarray(Image.open(axes).convert("RGB"))
    assert img.shape[:2] == (400, 1000)
    white_cols = (img == 255).all(axis=(0, 2)).sum()
    assert white_cols > 10, "margins for the axis labels"
    dark = (img.sum(axis=2) < 100).sum()
    assert dark > 500, "axis lines, ticks and text are drawn"


@pytest.mark.parametrize("shape", [(64, 313), (128, 313), (64, 200), (64, 40)])
def test_lut_seed_frame_matches_the_matplotlib_image(shape):
    rng = np.random.default_rng(1)
    feats = rng.standard_normal(shape).astype(np.float32).cumsum(axis=1)
    slow = render(feats, size=(224, 224), renderer="matplotlib", origin="upper")
    fast = render(feats, size=(224, 224), renderer="lut", origin="upper", frame="seed")
    assert fast.shape == slow.shape == (224, 224, 3)
    diff = np.abs(fast.astype(float) - slow.astype(float)).mean()
    assert diff <= 2.0, f"mean abs diff {diff:.2f}/255"
    # the white border is there: the top row is white in both
    assert (fast[0] > 240).all() and (slow[0] > 240).all()
    full = render(feats, renderer="lut", frame="seed")
    assert full.shape == (328, 795, 3)
    with pytest.raises(ConfigError, match="frame"):
        render(feats, frame="poster")


def test_plot_draws_the_four_panels(monkeypatch, capsys, tmp_path, write_wav, tone_noise):
    wav = write_wav("clip.wav", tone_noise(2.0))
    code, out, err = run_cli(monkeypatch, capsys, "plot", wav)
    assert code == 0, err
    target = wav.with_name("clip_plot.png")
    assert out.strip() == str(target)
    img = np.asarray(Image.open(target).convert("RGB"))
    assert img.shape[0] > 900 and img.shape[1] > 900
    code, _, _ = run_cli(monkeypatch, capsys, "plot", wav, tmp_path / "p.pdf")
    assert code == 0 and (tmp_path / "p.pdf").read_bytes().startswith(b"%PDF")
    code, _, err = run_cli(monkeypatch, capsys, "plot", tmp_path / "missing.wav")
    assert code == 2 and err.startswith("error: ")
