"""The seed's U-Net-style 1-D convolutional autoencoder."""

from __future__ import annotations

import torch

from soundwatch.detectors.networks.unet1d import UNetAE1d


def test_unet_has_no_latent_sampling():
    net = UNetAE1d(8, channels=(4, 8, 16, 32)).eval()
    x = torch.randn(2, 8, 32)
    torch.testing.assert_close(net(x), net(x))
    assert net(x).shape == x.shape and net.forward_features(x).shape == (2, 32)
