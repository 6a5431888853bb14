"""WaveVisionNet, its blocks and the LambdaConv layer: shapes, SE, gradients, presets."""

from __future__ import annotations

import pytest
import torch

from soundwatch.detectors.networks.lambda_layer import LambdaConv
from soundwatch.detectors.networks.wavevision import (
    WAVEVISION_PRESETS,
    FusedMBConv,
    MBConv,
    SqueezeExcite,
    StageSpec,
    WaveVisionNet,
    resolve_wavevision_config,
)
from soundwatch.errors import ConfigError

TINY = WAVEVISION_PRESETS["tiny"]


@pytest.mark.parametrize(("m", "size"), [(23, (7, 7)), (3, (5, 9)), (0, (4, 4)), (5, (1, 1))])
def test_lambda_conv_keeps_the_map_size(m, size):
    layer = LambdaConv(16, 32, heads=4, k=8, u=1, m=m)
    out = layer(torch.randn(2, 16, *size))
    assert out.shape == (2, 32, *size)


def test_lambda_conv_with_intra_depth():
    layer = LambdaConv(8, 8, heads=2, k=4, u=2, m=3)
    assert layer(torch.randn(3, 8, 6, 6)).shape == (3, 8, 6, 6)


def test_lambda_conv_is_translation_equivariant_away_from_edges():
    torch.manual_seed(0)
    layer = LambdaConv(4, 8, heads=2, k=4, m=3).eval()
    x = torch.zeros(1, 4, 6, 6)
    x[..., 1, 1] = 1.0
    shifted = torch.roll(x, (2, 2), dims=(2, 3))
    a, b = layer(x), layer(shifted)
    # a local (m=3) lambda: the response moves with the input, it is not global
    torch.testing.assert_close(
        torch.roll(a, (2, 2), dims=(2, 3))[..., 2:5, 2:5], b[..., 2:5, 2:5], atol=1e-5, rtol=1e-4
    )


def test_lambda_conv_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        LambdaConv(8, 10, heads=4)
    with pytest.raises(ValueError, match="odd"):
        LambdaConv(8, 8, heads=4, m=4)


def test_lambda_conv_gradients_reach_position_embedding():
    layer = LambdaConv(8, 8, heads=2, k=4, m=5)
    layer(torch.randn(2, 8, 6, 6)).pow(2).sum().backward()
    assert layer.pos_embedding.grad is not None and layer.pos_embedding.grad.abs().sum() > 0


def test_squeeze_excite_gates_are_per_channel_in_0_1():
    se = SqueezeExcite(6, 2)
    x = torch.randn(3, 6, 5, 5)
    gates = se.gates(x)
    assert gates.shape == (3, 6, 1, 1)
    assert torch.all((gates > 0) & (gates < 1))
    torch.testing.assert_close(se(x), x * gates)


def test_mbconv_blocks_use_se_and_residuals():
    block = MBConv(8, 8, expand=4, stride=1, se=0.25)
    assert isinstance(block.se, SqueezeExcite) and block.residual
    assert block(torch.randn(2, 8, 8, 8)).shape == (2, 8, 8, 8)
    down = FusedMBConv(8, 16, expand=4, stride=2, se=0.0)
    assert not down.residual
    assert down(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)


def test_network_has_se_blocks_and_a_lambda_layer():
    net = WaveVisionNet(3, config=WAVEVISION_PRESETS["small"])
    kinds = [type(b).__name__ for b in net.blocks]
    assert "FusedMBConv" in kinds and "MBConv" in kinds
    assert any(isinstance(m, SqueezeExcite) for m in net.modules())
    lam = net.lambda_layer
    assert (lam.heads, lam.k, lam.u, lam.m) == (4, 16, 1, 23)


@pytest.mark.parametrize(("channels", "size"), [(3, (64, 64)), (1, (16, 40))])
def test_output_and_embedding_shapes(channels, size):
    net = WaveVisionNet(channels, num_outputs=5, config=TINY).eval()
    x = torch.randn(2, channels, *size)
    assert net(x).shape == (2, 5)
    assert net.forward_features(x).shape == (2, net.num_features)
    assert net.num_features == TINY.head


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = WaveVisionNet(3, config=resolve_wavevision_config("tiny", dropout=0.0))
    net(torch.randn(4, 3, 32, 32)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert missing == []
    assert net.stem[0].weight.grad.abs().sum() > 0


def test_same_seed_same_output():
    x = torch.randn(2, 3, 32, 32)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(WaveVisionNet(3, config=TINY).eval()(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_untrained_deep_network_is_numerically_tame():
    torch.manual_seed(0)
    net = WaveVisionNet(3, config=WAVEVISION_PRESETS["small"]).eval()
    emb = net.forward_features(torch.randn(2, 3, 96, 96))
    assert torch.isfinite(emb).all() and emb.abs().max() < 1e3


def test_seed_preset_is_efficientnetv2_rw_s_like():
    cfg = WAVEVISION_PRESETS["seed"]
    assert [s.kind for s in cfg.stages] == ["fused"] * 3 + ["mb"] * 3
    assert all(s.se > 0 for s in cfg.stages if s.kind == "mb")
    assert (cfg.lambda_heads, cfg.lambda_k, cfg.lambda_u, cfg.lambda_m) == (4, 16, 1, 23)


def test_resolve_accepts_stage_dicts_and_rejects_bad_values():
    cfg = resolve_wavevision_config(
        "tiny", stages=[{"kind": "mb", "expand": 2, "channels": 8, "stride": 2, "repeats": 1}]
    )
    assert cfg.stages == (StageSpec("mb", 2, 8, 2, 1),)
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_wavevision_config("huge")
    with pytest.raises(ConfigError, match="fused/mb"):
        resolve_wavevision_config("tiny", stages=[["conv", 1, 8, 1, 1]])
    with pytest.raises(ConfigError, match="divisible"):
        resolve_wavevision_config("tiny", head=10)
