"""The seed's "VAE1D": a U-Net-style 1-D convolutional autoencoder (not variational)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["UNetAE1d"]


class UNetAE1d(nn.Module):
    """Strided Conv1d encoder, ConvTranspose1d decoder, additive skip connections.

    As in the seed repository (where it is called ``VAE1D``): four stride-2 encoder stages
    with 64-128-256-512 channels (Conv1d kernel 4 + BatchNorm + ReLU), four transposed
    stages back, the output of each decoder stage added to the encoder output of the same
    resolution, trained with MSE. There is no latent sampling and no KL term: it is a
    deterministic autoencoder, scored by reconstruction error. ``T`` must be a multiple of
    ``2 ** len(channels)``.

    Args:
        in_channels: Feature bins (input channels).
        channels: Encoder stage widths.
    """

    def __init__(
        self, in_channels: int = 84, channels: Sequence[int] = (64, 128, 256, 512)
    ) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.num_features = int(channels[-1])  # the bottleneck's channels (timm's name)
        widths = [self.in_channels, *channels]
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(a, b, 4, stride=2, padding=1), nn.BatchNorm1d(b), nn.ReLU(inplace=True)
            )
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        ups: list[nn.Module] = []
        for a, b in zip(widths[:0:-1], widths[-2::-1], strict=True):
            last = len(ups) == len(channels) - 1
            layers: list[nn.Module] = [nn.ConvTranspose1d(a, b, 4, stride=2, padding=1)]
            if not last:
                layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
            ups.append(nn.Sequential(*layers))
        self.up = nn.ModuleList(ups)

    @property
    def time_multiple(self) -> int:
        """Sequence lengths must be multiples of this."""
        return 2 ** len(self.down)

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        return skips

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, channels[-1]]``: the deepest encoder output averaged over time."""
        return self._encode(x)[-1].mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``[B, in_channels, T]``."""
        skips = self._encode(x)
        h = skips[-1]
        for i, stage in enumerate(self.up):
            h = stage(h)
            j = len(skips) - 2 - i
            if j >= 0:
                h = h + skips[j]
        return h
