"""Wave1DCNN: a 1-D convolutional + bidirectional GRU network for multi-channel signals."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from soundwatch.errors import ConfigError

__all__ = ["CNN1D_PRESETS", "GeM1d", "Wave1DCNN", "Wave1DCNNConfig", "resolve_cnn1d_config"]


class GeM1d(nn.Module):
    """Generalised-mean pooling over time with a learnable exponent ``p``.

    ``y = avg_pool(clamp(x, eps) ** p) ** (1 / p)``: ``p = 1`` is average pooling and a
    large ``p`` approaches max pooling. The kernel shrinks to the input length when the
    input is shorter than the kernel, so short clips never fail.

    Args:
        kernel_size: Pooling window (and stride) in time steps.
        p: Initial exponent.
        eps: Floor applied before the power (the input of a SiLU block can be negative).
        learnable: Train ``p`` with the rest of the network.
    """

    def __init__(
        self, kernel_size: int, p: float = 3.0, eps: float = 1e-6, learnable: bool = True
    ) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.eps = float(eps)
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x`` [B, C, T] -> [B, C, T // kernel]."""
        kernel = min(self.kernel_size, x.shape[-1])
        if kernel <= 1:
            return x
        p = self.p.clamp(min=1.0)
        return F.avg_pool1d(x.clamp(min=self.eps).pow(p), kernel).pow(1.0 / p)

    def extra_repr(self) -> str:  # noqa: D102
        return f"kernel_size={self.kernel_size}, p={float(self.p.detach()):.3f}"


@dataclass(frozen=True)
class Wave1DCNNConfig:
    """Sizes of a :class:`Wave1DCNN`.

    Attributes:
        channels: Output channels of each Conv1d block.
        kernels: Kernel size of each Conv1d block (same length as ``channels``).
        pool_after: 1-based indices of the blocks followed by GeM pooling.
        pool_kernels: GeM kernel of each entry of ``pool_after``.
        gem_p: Initial GeM exponent.
        gru_hidden: Units per direction of each bidirectional GRU layer (0: no GRU).
        gru_layers: Number of stacked bidirectional GRU layers.
        dropout: Dropout after the LayerNorm and in the head.
        head_hidden: Hidden units of the MLP head.
    """

    channels: tuple[int, ...] = (32, 32, 64, 64)
    kernels: tuple[int, ...] = (7, 5, 5, 3)
    pool_after: tuple[int, ...] = (2, 4)
    pool_kernels: tuple[int, ...] = (2, 2)
    gem_p: float = 3.0
    gru_hidden: int = 64
    gru_layers: int = 1
    dropout: float = 0.25
    head_hidden: int = 64

    def validate(self) -> None:
        """Raise :class:`ConfigError` for inconsistent sizes."""
        if not self.channels or len(self.channels) != len(self.kernels):
            raise ConfigError("cnn1d", "channels and kernels must be non-empty and the same length")
        if len(self.pool_after) != len(self.pool_kernels):
            raise ConfigError("cnn1d", "pool_after and pool_kernels must be the same length")
        if any(not 1 <= i <= len(self.channels) for i in self.pool_after):
            raise ConfigError("cnn1d", f"pool_after indices must lie in 1..{len(self.channels)}")
        if min(self.channels) < 1 or min(self.kernels) < 1 or min(self.pool_kernels, default=1) < 1:
            raise ConfigError("cnn1d", "channels, kernels and pool kernels must be positive")
        if self.gru_hidden < 0 or self.gru_layers < 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("cnn1d", "gru sizes must be >= 0 and dropout in [0, 1)")

    def as_dict(self) -> dict[str, Any]:
        """The sizes as plain JSON-friendly values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


CNN1D_PRESETS: dict[str, Wave1DCNNConfig] = {
    "small": Wave1DCNNConfig(),
    "tiny": Wave1DCNNConfig(
        channels=(8, 8), kernels=(5, 3), pool_after=(2,), pool_kernels=(2,),
        gru_hidden=8, gru_layers=1, head_hidden=8,
    ),
    # The seed system's Wave1DCNN sizes (docs: /work/shared/seed/SYSTEM.md).
    "seed": Wave1DCNNConfig(
        channels=(64, 64, 128, 128, 256, 256), kernels=(16, 8, 8, 4, 4, 4),
        pool_after=(2, 4, 6), pool_kernels=(8, 6, 4), gru_hidden=256, gru_layers=2,
        dropout=0.25, head_hidden=256,
    ),
}
"""Named size presets: ``small`` (default, trains on a CPU in minutes), ``tiny`` (tests),
``seed`` (the seed system's sizes)."""


def resolve_cnn1d_config(preset: str = "small", **overrides: Any) -> Wave1DCNNConfig:
    """A preset's config with some sizes replaced (``None`` values are ignored).

    Raises:
        ConfigError: Unknown preset, unknown size or inconsistent sizes.
    """
    if preset not in CNN1D_PRESETS:
        raise ConfigError("cnn1d", f"unknown preset {preset!r} (known: {', '.join(CNN1D_PRESETS)})")
    base = asdict(CNN1D_PRESETS[preset])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in base:
            raise ConfigError("cnn1d", f"unknown size {key!r}")
        base[key] = tuple(value) if isinstance(value, list | tuple) else value
    config = Wave1DCNNConfig(**base)
    config.validate()
    return config


class _ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.ConstantPad1d(((kernel - 1) // 2, kernel // 2), 0.0),  # "same" length, any kernel
            nn.Conv1d(c_in, c_out, kernel, bias=False),
            nn.BatchNorm1d(c_out),
            nn.SiLU(inplace=True),
        )


class Wave1DCNN(nn.Module):
    """Conv1d blocks with GeM pooling, bidirectional GRUs and an MLP head.

    The input is any multi-channel 1-D signal ``[B, C, T]``: a (band-passed) waveform
    with ``C = 1``, or CQT / log-mel bins as channels. Architecture::

        [Conv1d -> BatchNorm -> SiLU] x N   (GeM pooling after the chosen blocks)
        -> BiGRU x L  +  Linear(conv features)      (residual projection)
        -> LayerNorm -> Dropout -> SiLU -> mean and max over time   = embedding
        -> Linear -> SiLU -> Dropout -> Linear                      = head

    Args:
        in_channels: Channels ``C`` of the input.
        num_outputs: Width of the head's output (1 for a binary logit; for a
            cosine-margin objective the head is bypassed and only the embedding is used).
        config: Sizes; defaults to the ``small`` preset.
    """

    def __init__(
        self, in_channels: int, num_outputs: int = 1, config: Wave1DCNNConfig | None = None
    ) -> None:
        super().__init__()
        config = config or CNN1D_PRESETS["small"]
        config.validate()
        self.config = config
        self.in_channels = int(in_channels)
        layers: list[nn.Module] = []
        c_in = self.in_channels
        pools = dict(zip(config.pool_after, config.pool_kernels, strict=True))
        for i, (c_out, kernel) in enumerate(zip(config.channels, config.kernels, strict=True), 1):
            layers.append(_ConvBlock(c_in, c_out, kernel))
            if i in pools:
                layers.append(GeM1d(pools[i], p=config.gem_p))
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        if config.gru_hidden > 0 and config.gru_layers > 0:
            self.gru: nn.GRU | None = nn.GRU(
                c_in, config.gru_hidden, num_layers=config.gru_layers,
                batch_first=True, bidirectional=True,
                dropout=config.dropout if config.gru_layers > 1 else 0.0,
            )
            seq_dim = 2 * config.gru_hidden
        else:
            self.gru = None
            seq_dim = c_in
        self.residual = nn.Linear(c_in, seq_dim)
        self.norm = nn.LayerNorm(seq_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.act = nn.SiLU()
        self.num_features = 2 * seq_dim
        self.head = nn.Sequential(
            nn.Linear(self.num_features, config.head_hidden),
            nn.SiLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.head_hidden, num_outputs),
        )

    @property
    def gem_layers(self) -> list[GeM1d]:
        """The GeM pooling layers, in order."""
        return [m for m in self.convs if isinstance(m, GeM1d)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, num_features]`` of ``x`` ``[B, C, T]`` (or ``[B, T]`` for C = 1)."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input [B, {self.in_channels}, T], got {list(x.shape)}")
        h = self.convs(x).transpose(1, 2)  # [B, T', C']
        seq = self.gru(h)[0] if self.gru is not None else h
        seq = self.act(self.dropout(self.norm(seq + self.residual(h))))
        return torch.cat([seq.mean(dim=1), seq.amax(dim=1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Head output ``[B, num_outputs]``."""
        return self.head(self.forward_features(x))

