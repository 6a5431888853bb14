"""The DCASE Task 2 baseline dense autoencoder."""

from __future__ import annotations

import torch
from torch import nn

from soundwatch.detectors.networks.ae import DenseAutoencoder


def test_dense_autoencoder_matches_the_dcase_baseline_layout():
    net = DenseAutoencoder(640)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linears]
    assert sizes == [
        (640, 128),
        (128, 128),
        (128, 128),
        (128, 128),
        (128, 8),
        (8, 128),
        (128, 128),
        (128, 128),
        (128, 128),
        (128, 640),
    ]
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 9 and all(n.momentum == 0.01 and n.eps == 1e-3 for n in norms)
    assert isinstance(net.decoder[-1], nn.Linear)  # linear output
    x = torch.randn(4, 640)
    assert net(x).shape == (4, 640) and net.forward_features(x).shape == (4, 8)
