"""The 1-D convolutional variational autoencoder."""

from __future__ import annotations

import torch

from soundwatch.detectors.networks.vae1d import ConvVAE1d


def test_vae_samples_in_training_and_is_deterministic_in_eval():
    torch.manual_seed(0)
    vae = ConvVAE1d(16, hidden=8, latent_dim=4, n_down=2)
    x = torch.randn(2, 16, 32)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == (2, 4, 8)
    assert vae.kl(torch.zeros_like(mu), torch.zeros_like(logvar)).abs().max() == 0
    vae.eval()
    torch.testing.assert_close(vae(x)[0], vae(x)[0])
    vae.train()
    assert not torch.equal(vae(x)[0], vae(x)[0])  # reparameterised samples differ
