"""A true variational autoencoder over feature sequences, with 1-D convolutions along time."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvVAE1d"]


def _conv(n_in: int, n_out: int, kernel: int, stride: int) -> nn.Sequential:
    pad = (kernel - stride + 1) // 2 if stride > 1 else kernel // 2
    return nn.Sequential(
        nn.Conv1d(n_in, n_out, kernel, stride=stride, padding=pad),
        nn.BatchNorm1d(n_out),
        nn.LeakyReLU(0.2),
    )


def _deconv(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose1d(n_in, n_out, 4, stride=2, padding=1),
        nn.BatchNorm1d(n_out),
        nn.LeakyReLU(0.2),
    )


class ConvVAE1d(nn.Module):
    """VAE on ``[B, bins, T]`` sequences: feature bins are channels, convolutions run along time.

    Encoder: a Conv1d (kernel 5) then ``n_down`` stride-2 Conv1d stages; two 1x1 heads give
    the mean and log-variance of a latent *sequence* ``[B, latent_dim, T / 2**n_down]``.
    A sample ``z = mu + sigma * eps`` is decoded by ``n_down`` ConvTranspose1d stages and a
    final Conv1d back to ``[B, bins, T]`` (the mean of a unit-variance Gaussian likelihood).
    ``T`` must be a multiple of ``2**n_down``.

    Args:
        in_channels: Feature bins (e.g. 128 mels).
        hidden: Channels of the convolution stages.
        latent_dim: Latent channels per time step.
        n_down: Number of stride-2 stages.
    """

    def __init__(
        self, in_channels: int = 128, hidden: int = 128, latent_dim: int = 16, n_down: int = 2
    ) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.latent_dim = int(latent_dim)
        self.num_features = self.latent_dim  # the embedding's size (timm's name)
        self.n_down = int(n_down)
        enc = [_conv(in_channels, hidden, 5, 1)] + [
            _conv(hidden, hidden, 4, 2) for _ in range(n_down)
        ]
        self.encoder = nn.Sequential(*enc)
        self.mu = nn.Conv1d(hidden, latent_dim, 1)
        self.logvar = nn.Conv1d(hidden, latent_dim, 1)
        dec: list[nn.Module] = [_conv(latent_dim, hidden, 3, 1)]
        dec += [_deconv(hidden, hidden) for _ in range(n_down)]
        dec.append(nn.Conv1d(hidden, in_channels, 5, padding=2))
        self.decoder = nn.Sequential(*dec)

    @property
    def time_multiple(self) -> int:
        """Sequence lengths must be multiples of this."""
        return 2**self.n_down

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of the latent sequence, each ``[B, latent_dim, T']``."""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h).clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction mean ``[B, bins, T]`` of latent samples."""
        return self.decoder(z)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per item, summed over latent channels and time: ``[B]``."""
        return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=(1, 2))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, latent_dim]``: the latent mean averaged over time."""
        mu, _ = self.encode(x)
        return mu.mean(dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction, mu, logvar)`` with one reparameterised sample (training)."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar
