"""Encoders: every registered network builds for its input layout; InputPrep and EncoderModel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundwatch.detectors.encoders import (
    ENCODERS,
    EncoderModel,
    InputPrep,
    InputSpec,
    describe_encoders,
    encoder_info,
    list_encoders,
)
from soundwatch.errors import DetectorError

CHANNELS, WINDOW = 16, 32
# small settings of each built-in encoder and the InputSpec it is built on
BUILT_IN = {
    "ae": ({"hidden": 8, "n_hidden": 2, "latent_dim": 3}, InputSpec("rows", 48)),
    "vae1d": ({"hidden": 8, "latent_dim": 4}, InputSpec("windows", CHANNELS, WINDOW)),
    "unet1d": ({"base_channels": 4, "n_stages": 2}, InputSpec("windows", CHANNELS, WINDOW)),
    "cnn1d": ({"preset": "tiny"}, InputSpec("windows", CHANNELS, WINDOW, num_outputs=3)),
    "wavevision": ({"preset": "tiny", "image_size": 32},
                   InputSpec("windows", CHANNELS, WINDOW, num_outputs=3)),
}
EXPECTED_DIM = {"ae": 3, "vae1d": 4, "unet1d": 8}


def _batch(spec: InputSpec, n: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    if spec.layout == "rows":
        return torch.randn(n, spec.channels)
    return torch.randn(n, spec.channels, spec.window)


def test_the_built_in_encoders_are_registered_and_described():
    assert set(BUILT_IN) <= set(list_encoders())
    descriptions = describe_encoders()
    assert all(descriptions[name] for name in BUILT_IN)
    assert encoder_info("ae").layout == "rows"
    assert all(encoder_info(n).layout == "windows" for n in ("vae1d", "unet1d", "cnn1d",
                                                              "wavevision"))
    assert all(encoder_info(n).trainable for n in BUILT_IN)


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_builds_on_its_layout_with_forward_and_embedding_shapes(name):
    params, spec = BUILT_IN[name]
    model = ENCODERS.create(name, spec=spec, **params)
    assert isinstance(model, EncoderModel)
    model.eval()
    x = _batch(spec)
    with torch.inference_mode():
        emb = model.embed(x)
        out = model(x)
    assert emb.shape == (2, model.num_features)
    assert torch.isfinite(emb).all()
    if name in EXPECTED_DIM:
        assert model.num_features == EXPECTED_DIM[name]
    if name == "vae1d":
        recon, mu, logvar = out
        assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 4, WINDOW // 4)
    elif name in ("ae", "unet1d"):
        assert out.shape == x.shape  # reconstructions
    else:
        assert out.shape == (2, spec.num_outputs)  # classifier logits


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_the_wrong_layout_is_refused(name):
    params, spec = BUILT_IN[name]
    wrong = InputSpec("windows", 48, WINDOW) if spec.layout == "rows" else InputSpec("rows", 48)
    with pytest.raises(DetectorError, match=f"encoder {name}: reads {spec.layout}"):
        ENCODERS.create(name, spec=wrong, **params)


def test_cnn1d_reads_a_waveform_as_one_channel():
    model = ENCODERS.create("cnn1d", spec=InputSpec("windows", 1, 400, 2), preset="tiny").eval()
    assert model(torch.randn(3, 1, 400)).shape == (3, 2)


def test_wavevision_logmel_input_and_image_input():
    spec = InputSpec("windows", CHANNELS, WINDOW, 2)
    logmel = ENCODERS.create("wavevision", spec=spec, input="logmel", preset="tiny").eval()
    assert logmel.prepared(_batch(spec)).shape == (2, 1, CHANNELS, WINDOW)
    image = ENCODERS.create("wavevision", spec=spec, image_size=24, preset="tiny").eval()
    assert image.prepared(_batch(spec)).shape == (2, 3, 24, 24)
    assert image(_batch(spec)).shape == (2, 2)


def test_time_multiples_follow_the_down_sampling():
    assert encoder_info("vae1d").time_multiple({}) == 4
    assert encoder_info("vae1d").time_multiple({"n_down": 3}) == 8
    assert encoder_info("unet1d").time_multiple({}) == 16
    assert encoder_info("unet1d").time_multiple({"n_stages": 2}) == 4
    assert encoder_info("cnn1d").time_multiple({}) == 1


@pytest.mark.parametrize(("name", "params"), [
    ("ae", {"hidden": 0}),
    ("ae", {"latent_dim": 2.5}),
    ("vae1d", {"n_down": 0}),
    ("unet1d", {"base_channels": True}),
    ("cnn1d", {"preset": "huge"}),
    ("cnn1d", {"network_params": {"gru_hidden": -1}}),
    ("cnn1d", {"network_params": {"no_such_size": 3}}),
    ("wavevision", {"input": "video"}),
    ("wavevision", {"image_range": "auto"}),
    ("wavevision", {"cmap": "no-such-map"}),
    ("wavevision", {"image_size": 0}),
    ("wavevision", {"preset": "huge"}),
])
def test_invalid_params_are_refused(name, params):
    base, spec = BUILT_IN[name]
    with pytest.raises(DetectorError, match=f"encoder {name}"):
        ENCODERS.create(name, spec=spec, **{**base, **params})


def test_unknown_encoder_and_parameter():
    with pytest.raises(DetectorError, match=r"unknown encoder \(known: .*ae"):
        ENCODERS.get("transformer")
    with pytest.raises(DetectorError, match="depth"):
        ENCODERS.create("ae", spec=InputSpec("rows", 8), depth=3)


# ----------------------------------------------------------------- EncoderModel


def test_encoder_model_prep_defaults_to_identity_and_takes_statistics():
    net = torch.nn.Linear(4, 4)
    net.forward_features = net.forward  # type: ignore[method-assign]
    net.num_features = 4
    model = EncoderModel(None, net)
    x = torch.randn(2, 4)
    torch.testing.assert_close(model.prepared(x), x)
    model.set_stats(np.zeros(4), np.ones(4))  # no InputPrep: nothing to set, no error
    assert model.num_features == 4 and model.head is None

    prep = InputPrep("channels", 3, augment=False)
    model = EncoderModel(prep, torch.nn.Identity())
    model.set_stats(np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.0, 1.0]))
    torch.testing.assert_close(prep.mean.view(-1), torch.tensor([1.0, 2.0, 3.0]))
    assert float(prep.std.view(-1)[1]) == pytest.approx(1e-5)  # a constant channel is kept
    y = model.prepared(torch.full((1, 3, 2), 3.0))
    torch.testing.assert_close(y[0, :, 0], torch.tensor([1.0, 1e5, 0.0]))


# ----------------------------------------------------------------- InputPrep


def test_input_prep_masks_and_shifts_only_in_training():
    prep = InputPrep("channels", 8, time_mask=0.5, freq_mask=0.5)
    x = torch.randn(4, 8, 30)
    prep.eval()
    torch.testing.assert_close(prep(x), x)
    prep.train()
    torch.manual_seed(0)
    y = prep(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    image = InputPrep("image", 8, image_size=24).eval()(x)
    assert image.shape == (4, 3, 24, 24)


def test_input_prep_without_augment_is_the_same_in_training():
    prep = InputPrep("channels", 8, augment=False).train()
    x = torch.randn(2, 8, 30)
    torch.testing.assert_close(prep(x), x)


def test_input_prep_modes_shapes():
    x = torch.randn(2, 8, 30)
    assert torch.equal(InputPrep("none", 8).eval()(x), x)
    assert InputPrep("logmel2d", 8).eval()(x).shape == (2, 1, 8, 30)
    with pytest.raises(DetectorError, match="mode"):
        InputPrep("spectrogram", 8)


def test_input_prep_flip_reverses_time_in_training():
    prep = InputPrep("none", 2, time_shift=False, time_mask=0.0, freq_mask=0.0, flip=True)
    x = torch.arange(10.0).repeat(64, 2, 1)
    torch.manual_seed(0)
    y = prep.train()(x)
    flipped = torch.all(y == x.flip(-1), dim=(1, 2))
    kept = torch.all(y == x, dim=(1, 2))
    assert torch.all(flipped | kept) and flipped.any() and kept.any()


def test_image_range_standard_keeps_levels_that_minmax_hides():
    x = torch.randn(1, 8, 30)
    louder = x + 2.0  # the same pattern, every bin 2 units (e.g. dB) higher
    for image_range, same in (("minmax", True), ("standard", False)):
        prep = InputPrep("image", 8, image_size=16, image_range=image_range).eval()
        a, b = prep(x), prep(louder)
        assert a.shape == (1, 3, 16, 16)
        assert torch.equal(a, b) == same, image_range
