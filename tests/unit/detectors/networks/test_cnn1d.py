"""Wave1DCNN and GeM pooling: shapes, learnable exponent, gradients, presets, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from soundwatch.detectors.networks.cnn1d import (
    CNN1D_PRESETS,
    GeM1d,
    Wave1DCNN,
    resolve_cnn1d_config,
)
from soundwatch.errors import ConfigError

TINY = CNN1D_PRESETS["tiny"]


def test_output_and_embedding_shapes():
    net = Wave1DCNN(12, num_outputs=3, config=TINY).eval()
    x = torch.randn(4, 12, 50)
    assert net(x).shape == (4, 3)
    assert net.forward_features(x).shape == (4, net.num_features)
    assert net.num_features == 4 * TINY.gru_hidden  # mean + max of a bidirectional GRU


def test_single_channel_waveform_input_accepts_b_t():
    net = Wave1DCNN(1, config=TINY).eval()
    assert net(torch.randn(2, 400)).shape == (2, 1)


def test_wrong_channel_count_is_refused():
    net = Wave1DCNN(8, config=TINY)
    with pytest.raises(ValueError, match="expected input"):
        net(torch.randn(2, 5, 40))


def test_gem_with_p_one_is_average_pooling():
    gem = GeM1d(4, p=1.0)
    x = torch.rand(2, 3, 16) + 0.1
    torch.testing.assert_close(gem(x), F.avg_pool1d(x, 4))


def test_gem_with_large_p_approaches_max_pooling():
    gem = GeM1d(4, p=60.0)
    x = torch.rand(2, 3, 16) + 0.1
    torch.testing.assert_close(gem(x), F.max_pool1d(x, 4), atol=0.05, rtol=0.05)


def test_gem_shorter_input_than_kernel_still_pools():
    gem = GeM1d(8)
    assert gem(torch.rand(1, 2, 3)).shape == (1, 2, 1)


def test_gem_exponent_is_learned():
    torch.manual_seed(0)
    net = Wave1DCNN(4, config=TINY)
    gems = net.gem_layers
    assert len(gems) == len(TINY.pool_after)
    assert all(g.p.requires_grad for g in gems)
    before = [float(g.p.detach()) for g in gems]
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    loss = net(torch.randn(8, 4, 40)).pow(2).mean()
    loss.backward()
    assert all(g.p.grad is not None and g.p.grad.abs() > 0 for g in gems)
    opt.step()
    assert [float(g.p.detach()) for g in gems] != before


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = Wave1DCNN(6, config=TINY)
    net(torch.randn(4, 6, 48)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == []


def test_same_seed_same_network_output():
    x = torch.randn(2, 5, 40)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append(Wave1DCNN(5, config=TINY).eval()(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_seed_preset_has_the_seed_sizes():
    cfg = CNN1D_PRESETS["seed"]
    assert cfg.kernels == (16, 8, 8, 4, 4, 4)
    assert cfg.channels == (64, 64, 128, 128, 256, 256)
    assert cfg.pool_after == (2, 4, 6) and cfg.pool_kernels == (8, 6, 4)
    assert cfg.gru_hidden == 256 and cfg.gru_layers == 2 and cfg.dropout == 0.25
    net = Wave1DCNN(12, config=cfg)
    assert net.gru is not None and net.gru.bidirectional and net.gru.num_layers == 2
    assert [g.kernel_size for g in net.gem_layers] == [8, 6, 4]
    convs = [m for m in net.convs.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == [16, 8, 8, 4, 4, 4]
    assert net.eval()(torch.randn(1, 12, 400)).shape == (1, 1)


def test_even_kernels_keep_the_length():
    net = Wave1DCNN(
        3, config=resolve_cnn1d_config("tiny", kernels=[4, 2], pool_after=[], pool_kernels=[])
    )
    h = net.convs(torch.randn(1, 3, 37))
    assert h.shape[-1] == 37


def test_resolve_overrides_and_rejects_bad_sizes():
    cfg = resolve_cnn1d_config("small", gru_hidden=16, channels=[8, 8, 8, 8])
    assert cfg.gru_hidden == 16 and cfg.channels == (8, 8, 8, 8)
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_cnn1d_config("huge")
    with pytest.raises(ConfigError, match="unknown size"):
        resolve_cnn1d_config("small", nope=1)
    with pytest.raises(ConfigError, match="same length"):
        resolve_cnn1d_config("small", kernels=[3])
    with pytest.raises(ConfigError, match="pool_after"):
        resolve_cnn1d_config("small", pool_after=[9], pool_kernels=[2])


def test_no_gru_variant_works():
    net = Wave1DCNN(4, config=resolve_cnn1d_config("tiny", gru_hidden=0)).eval()
    assert net.gru is None
    assert net(torch.randn(2, 4, 30)).shape == (2, 1)
