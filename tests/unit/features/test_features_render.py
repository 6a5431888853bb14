import matplotlib
import numpy as np
import pytest
import torch

from soundwatch.audio import load
from soundwatch.errors import ConfigError
from soundwatch.features import create_frontend
from soundwatch.features.render import _matplotlib_image, colormap_lut, render, render_batch

TOL = 2.0  # mean absolute difference per channel, in 1/255 steps


def logmel_of(y: np.ndarray, name: str = "logmel") -> np.ndarray:
    with torch.inference_mode():
        return create_frontend(name)(torch.from_numpy(y)[None])[0].numpy()


def crop_white_border(img: np.ndarray) -> np.ndarray:
    """Remove the white margin savefig(pad_inches=0.1) adds (viridis has no white)."""
    content = (img < 250).any(axis=2)
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    return img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def matplotlib_224(feats: np.ndarray) -> np.ndarray:
    from PIL import Image

    img = crop_white_border(_matplotlib_image(feats, "viridis", None, "lower"))
    assert img.shape[0] > 250 and img.shape[1] > 700  # the 10x4 in figure's axes area
    return np.asarray(Image.fromarray(img).resize((224, 224), Image.BILINEAR))


def channel_mad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert a.shape == b.shape == (224, 224, 3)
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(axis=(0, 1))


def test_lut_equals_matplotlib_colormap_values():
    for name in ("viridis", "magma", "gray"):
        lut = colormap_lut(name)
        expected = matplotlib.colormaps[name].resampled(256)(np.arange(256), bytes=True)[:, :3]
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        np.testing.assert_array_equal(lut, expected)


def test_lut_levels_equal_matplotlib_mapping_of_values():
    values = np.linspace(-3.0, 5.0, 1000, dtype=np.float32)[None]  # 1 x 1000 image
    img = render(values, origin="upper")[0]
    norm = (values[0] - values.min()) / (values.max() - values.min())
    expected = matplotlib.colormaps["viridis"](norm, bytes=True)[:, :3]
    np.testing.assert_array_equal(img, expected)


def test_low_frequency_tone_is_drawn_in_the_bottom_rows(tone_noise):
    feats = logmel_of(tone_noise(1.0, 150.0, noise=0.001))
    rows = render(feats, cmap="gray", size=(100, 200)).astype(float).mean(axis=(1, 2))
    assert rows.argmax() >= 90  # brightest row near the bottom (low frequency)
    assert rows[90:].max() > rows[:50].max() + 100
    upper = render(feats, cmap="gray", size=(100, 200), origin="upper").astype(float)
    assert upper.mean(axis=(1, 2)).argmax() < 10


def test_time_runs_from_left_to_right(tone_noise):
    y = np.concatenate([np.zeros(8000, np.float32), tone_noise(0.5, 1000.0, noise=0.0)])
    y += 1e-4 * np.random.default_rng(0).standard_normal(y.size).astype(np.float32)
    brightest = render(logmel_of(y), cmap="gray").astype(float).mean(axis=2).max(axis=0)
    assert brightest.shape == (1 + y.size // 512,)
    assert brightest[-8:-2].min() > brightest[2:8].max() + 50  # the tone is on the right


def test_parity_with_matplotlib_on_real_clips(real_clips):
    for path in real_clips[:3]:
        for name in ("logmel_seed", "logmel"):
            feats = logmel_of(load(path), name)
            mad = channel_mad(render(feats, size=(224, 224)), matplotlib_224(feats))
            assert (mad <= TOL).all(), (path, name, mad)


def test_parity_with_matplotlib_on_synthetic_clip(tone_noise):
    # 10 s like the seed's clips: 313 frames, so matplotlib's "antialiased" mode
    # resamples in RGBA (upsampling < 3x); for short clips it switches to nearest
    rng = np.random.default_rng(1)
    y = tone_noise(10.0, 1500.0) * np.linspace(0.2, 1.0, 160000, dtype=np.float32)
    y += 0.02 * rng.standard_normal(y.size).astype(np.float32)
    feats = logmel_of(y, "logmel_seed")
    mad = channel_mad(render(feats, size=(224, 224)), matplotlib_224(feats))
    assert (mad <= TOL).all(), mad


def test_matplotlib_renderer_keeps_the_seed_border_and_resizes():
    feats = np.random.default_rng(0).standard_normal((64, 100)).astype(np.float32)
    img = render(feats, renderer="matplotlib")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert (img[0] == 255).all() and (img[:, 0] == 255).all()  # white pad_inches border
    assert render(feats, renderer="matplotlib", size=(50, 60)).shape == (50, 60, 3)


def test_render_batch_matches_render_per_image():
    feats = torch.randn(3, 64, 90)
    batch = render_batch(feats, size=(32, 48))
    assert batch.shape == (3, 3, 32, 48) and batch.dtype == torch.uint8
    for i in range(3):
        np.testing.assert_array_equal(batch[i].permute(1, 2, 0).numpy(),
                                      render(feats[i].numpy(), size=(32, 48)))


def test_fixed_value_range_clips_and_keeps_scale():
    feats = np.array([[-100.0, -80.0, -40.0, 0.0, 20.0]], dtype=np.float32)
    img = render(feats, vrange=(-80.0, 0.0), origin="upper")[0]
    lut = colormap_lut("viridis")
    np.testing.assert_array_equal(img[0], lut[0])  # below lo -> lowest colour
    np.testing.assert_array_equal(img[1], lut[0])
    np.testing.assert_array_equal(img[2], lut[128])
    np.testing.assert_array_equal(img[3], lut[255])
    np.testing.assert_array_equal(img[4], lut[255])  # above hi -> clipped


def test_constant_image_is_the_lowest_colour():
    img = render(np.full((8, 8), 3.0, dtype=np.float32))
    assert (img == colormap_lut("viridis")[0]).all()


def test_bad_render_options_raise_config_error():
    feats = np.zeros((4, 4), dtype=np.float32)
    with pytest.raises(ConfigError):
        render(feats, renderer="svg")
    with pytest.raises(ConfigError):
        render(feats, cmap="no-such-map")
    with pytest.raises(ConfigError):
        render(feats, size=(0, 10))
    with pytest.raises(ConfigError):
        render(feats, vrange=(1.0, 0.0))
    with pytest.raises(ConfigError):
        render(np.zeros(4, dtype=np.float32))


def test_cpu_integer_resize_is_within_two_levels_of_the_float_resize():
    from soundwatch.features.render import _torch_lut

    feats = torch.rand(3, 40, 150)
    fast = render_batch(feats, size=(96, 64))  # uint8 planes, torch's integer resize
    idx = (feats.flip(-2) * 256).long().clamp(0, 255)
    rgb = _torch_lut("viridis", "cpu").float()[idx].permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(rgb, size=(96, 64), mode="bilinear",
                                          align_corners=False, antialias=True)
    diff = (fast.float() - ref.round().clamp(0, 255)).abs()
    assert fast.dtype == torch.uint8 and fast.shape == (3, 3, 96, 64)
    assert diff.max() <= 2 and diff.mean() < 0.5
