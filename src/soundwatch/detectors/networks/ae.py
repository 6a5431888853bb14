"""Dense autoencoder of the DCASE 2020-2024 Task 2 baseline (640 -> 128x4 -> 8 -> 128x4 -> 640)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["DenseAutoencoder"]


def _block(n_in: int, n_out: int) -> list[nn.Module]:
    # BatchNorm momentum 0.01 / eps 1e-3: the baseline's (Keras-default) settings.
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=0.01, eps=1e-3), nn.ReLU()]


class DenseAutoencoder(nn.Module):
    """Fully connected autoencoder with BatchNorm + ReLU after every hidden layer.

    With the defaults this is the DCASE Task 2 baseline network: encoder
    ``640 -> 128 -> 128 -> 128 -> 128 -> 8`` and decoder ``8 -> 128 -> 128 -> 128 -> 128
    -> 640``; every layer but the last is Linear + BatchNorm1d + ReLU (the bottleneck
    too), the output layer is linear.

    Args:
        input_dim: Input size (``n_mels * n_frames``; 640 in the baseline).
        hidden: Hidden layer sizes of the encoder (mirrored in the decoder).
        latent_dim: Bottleneck size.
    """

    def __init__(
        self,
        input_dim: int = 640,
        hidden: Sequence[int] = (128, 128, 128, 128),
        latent_dim: int = 8,
    ) -> None:
        super().__init__()
        self.num_features = int(latent_dim)  # the embedding's size (timm's name)
        self.input_dim = int(input_dim)
        sizes = [self.input_dim, *hidden, latent_dim]
        enc: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            enc += _block(a, b)
        self.encoder = nn.Sequential(*enc)
        back = [latent_dim, *reversed(list(hidden))]
        dec: list[nn.Module] = []
        for a, b in zip(back[:-1], back[1:], strict=True):
            dec += _block(a, b)
        dec.append(nn.Linear(back[-1], self.input_dim))
        self.decoder = nn.Sequential(*dec)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck code ``[B, latent_dim]`` of inputs ``[B, input_dim]``."""
        return self.encoder(x.reshape(-1, self.input_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``[B, input_dim]``."""
        return self.decoder(self.forward_features(x))
