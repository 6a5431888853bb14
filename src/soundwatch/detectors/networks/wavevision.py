"""WaveVisionNet: a compact EfficientNetV2-style 2-D CNN with a lambda layer before its head."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from soundwatch.detectors.networks.lambda_layer import LambdaConv
from soundwatch.errors import ConfigError

__all__ = [
    "WAVEVISION_PRESETS",
    "FusedMBConv",
    "MBConv",
    "SqueezeExcite",
    "StageSpec",
    "WaveVisionNet",
    "WaveVisionConfig",
    "resolve_wavevision_config",
]


@dataclass(frozen=True)
class StageSpec:
    """One stage of blocks.

    Attributes:
        kind: ``"fused"`` (Fused-MBConv: one k x k conv expands) or ``"mb"`` (MBConv:
            1 x 1 expansion then a depthwise k x k conv).
        expand: Expansion ratio.
        channels: Output channels.
        stride: Stride of the stage's first block.
        repeats: Number of blocks.
        se: Squeeze-excitation ratio (relative to the block's input channels; 0: none).
        kernel: Spatial kernel size.
    """

    kind: str
    expand: int
    channels: int
    stride: int
    repeats: int
    se: float = 0.0
    kernel: int = 3


@dataclass(frozen=True)
class WaveVisionConfig:
    """Sizes of a :class:`WaveVisionNet`.

    Attributes:
        stem: Channels of the stride-2 stem convolution.
        stages: The block stages, in order.
        head: Channels of the 1 x 1 head convolution (= embedding size).
        lambda_heads: Query heads of the lambda layer.
        lambda_k: Query/key depth of the lambda layer.
        lambda_u: Intra-depth of the lambda layer.
        lambda_m: Local context of the lambda layer (odd; 0 = content only).
        dropout: Dropout before the classifier.
    """

    stem: int = 16
    stages: tuple[StageSpec, ...] = (
        StageSpec("fused", 1, 16, 1, 1),
        StageSpec("fused", 4, 24, 2, 1),
        StageSpec("fused", 4, 32, 2, 1),
        StageSpec("mb", 4, 64, 2, 1, se=0.25),
        StageSpec("mb", 4, 96, 1, 1, se=0.25),
        StageSpec("mb", 4, 128, 2, 1, se=0.25),
    )
    head: int = 256
    lambda_heads: int = 4
    lambda_k: int = 16
    lambda_u: int = 1
    lambda_m: int = 23
    dropout: float = 0.2

    def validate(self) -> None:
        """Raise :class:`ConfigError` for inconsistent sizes."""
        if not self.stages:
            raise ConfigError("wavevision", "at least one stage is needed")
        for stage in self.stages:
            if stage.kind not in ("fused", "mb"):
                raise ConfigError("wavevision", f"stage kind must be fused/mb, got {stage.kind!r}")
            if min(stage.expand, stage.channels, stage.stride, stage.repeats, stage.kernel) < 1:
                raise ConfigError("wavevision", f"stage sizes must be positive: {stage}")
        if self.head % self.lambda_heads:
            raise ConfigError("wavevision", "head channels must be divisible by lambda_heads")
        if self.lambda_m and self.lambda_m % 2 == 0:
            raise ConfigError("wavevision", "lambda_m must be odd (or 0)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("wavevision", "dropout must lie in [0, 1)")

    def as_dict(self) -> dict[str, Any]:
        """The sizes as plain JSON-friendly values."""
        out = asdict(self)
        out["stages"] = [asdict(s) for s in self.stages]
        return out


WAVEVISION_PRESETS: dict[str, WaveVisionConfig] = {
    "small": WaveVisionConfig(),
    "tiny": WaveVisionConfig(
        stem=8,
        stages=(StageSpec("fused", 2, 8, 2, 1), StageSpec("mb", 2, 16, 2, 1, se=0.25)),
        head=16, lambda_heads=4, lambda_k=4, lambda_m=3, dropout=0.0,
    ),
    # EfficientNetV2-rw_s-like stage layout (the seed's timm backbone), written here.
    "seed": WaveVisionConfig(
        stem=24,
        stages=(
            StageSpec("fused", 1, 24, 1, 2),
            StageSpec("fused", 4, 48, 2, 4),
            StageSpec("fused", 4, 64, 2, 4),
            StageSpec("mb", 4, 128, 2, 6, se=0.25),
            StageSpec("mb", 6, 160, 1, 9, se=0.25),
            StageSpec("mb", 6, 272, 2, 15, se=0.25),
        ),
        head=1792, lambda_heads=4, lambda_k=16, lambda_u=1, lambda_m=23, dropout=0.2,
    ),
}
"""Named size presets: ``small`` (default, CPU-friendly), ``tiny`` (tests), ``seed``
(EfficientNetV2-rw_s-like sizes, as in the seed system)."""


def resolve_wavevision_config(preset: str = "small", **overrides: Any) -> WaveVisionConfig:
    """A preset's config with some sizes replaced (``None`` values are ignored).

    ``stages`` may be given as a list of dicts or lists (``StageSpec`` fields in order).

    Raises:
        ConfigError: Unknown preset, unknown size or inconsistent sizes.
    """
    if preset not in WAVEVISION_PRESETS:
        known = ", ".join(WAVEVISION_PRESETS)
        raise ConfigError("wavevision", f"unknown preset {preset!r} (known: {known})")
    base = WAVEVISION_PRESETS[preset]
    values = {k: getattr(base, k) for k in base.__dataclass_fields__}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in values:
            raise ConfigError("wavevision", f"unknown size {key!r}")
        if key == "stages":
            try:
                value = tuple(
                    s if isinstance(s, StageSpec)
                    else StageSpec(**s) if isinstance(s, dict) else StageSpec(*s)
                    for s in value
                )
            except TypeError as exc:
                raise ConfigError("wavevision", f"bad stage spec: {exc}") from exc
        values[key] = value
    config = WaveVisionConfig(**values)
    config.validate()
    return config


def _conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: channel gates from globally pooled features.

    Args:
        channels: Channels of the gated map.
        reduced: Channels of the bottleneck.
    """

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = nn.SiLU(inplace=True)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gates ``[B, C, 1, 1]`` in (0, 1)."""
        return torch.sigmoid(self.expand(self.act(self.reduce(x.mean(dim=(2, 3), keepdim=True)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel of ``x`` by its gate."""
        return x * self.gates(x)


class MBConv(nn.Module):
    """Inverted residual block: 1 x 1 expand, depthwise k x k, SE, 1 x 1 project."""

    def __init__(self, c_in: int, c_out: int, expand: int, stride: int, se: float,
                 kernel: int = 3) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = _conv_bn_act(c_in, mid, 1) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn_act(mid, mid, kernel, stride, groups=mid)
        self.se = SqueezeExcite(mid, max(1, int(c_in * se))) if se > 0 else nn.Identity()
        self.project = _conv_bn_act(mid, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class FusedMBConv(nn.Module):
    """Fused inverted residual block: k x k expand (strided), optional SE, 1 x 1 project."""

    def __init__(self, c_in: int, c_out: int, expand: int, stride: int, se: float,
                 kernel: int = 3) -> None:
        super().__init__()
        mid = c_in * expand
        if expand == 1:
            self.expand = _conv_bn_act(c_in, c_out, kernel, stride)
            self.se: nn.Module = (
                SqueezeExcite(c_out, max(1, int(c_in * se))) if se > 0 else nn.Identity()
            )
            self.project: nn.Module = nn.Identity()
        else:
            self.expand = _conv_bn_act(c_in, mid, kernel, stride)
            self.se = SqueezeExcite(mid, max(1, int(c_in * se))) if se > 0 else nn.Identity()
            self.project = _conv_bn_act(mid, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = self.project(self.se(self.expand(x)))
        return x + y if self.residual else y


class WaveVisionNet(nn.Module):
    """EfficientNetV2-style CNN for spectrogram images with a LambdaConv before the head.

    Architecture::

        stem (3x3, stride 2) -> Fused-MBConv stages -> MBConv+SE stages
        -> 1x1 conv (head channels) -> LambdaConv -> BatchNorm -> SiLU
        -> global average pooling                 = embedding [B, head]
        -> Dropout -> Linear                      = classifier

    Args:
        in_channels: 3 for rendered RGB images, 1 for a log-mel "image".
        num_outputs: Width of the classifier output.
        config: Sizes; defaults to the ``small`` preset.
    """

    def __init__(
        self, in_channels: int = 3, num_outputs: int = 1, config: WaveVisionConfig | None = None
    ) -> None:
        super().__init__()
        config = config or WAVEVISION_PRESETS["small"]
        config.validate()
        self.config = config
        self.in_channels = int(in_channels)
        self.stem = _conv_bn_act(self.in_channels, config.stem, 3, 2)
        blocks: list[nn.Module] = []
        c_in = config.stem
        for stage in config.stages:
            block_cls = FusedMBConv if stage.kind == "fused" else MBConv
            for i in range(stage.repeats):
                blocks.append(block_cls(
                    c_in, stage.channels, stage.expand, stage.stride if i == 0 else 1,
                    stage.se, stage.kernel,
                ))
                c_in = stage.channels
        self.blocks = nn.Sequential(*blocks)
        self.conv_head = nn.Conv2d(c_in, config.head, 1, bias=False)
        self.lambda_layer = LambdaConv(
            config.head, config.head, heads=config.lambda_heads, k=config.lambda_k,
            u=config.lambda_u, m=config.lambda_m,
        )
        self.norm = nn.BatchNorm2d(config.head)
        self.act = nn.SiLU(inplace=True)
        self.num_features = config.head
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.head, num_outputs)
        self._init_weights()

    def _init_weights(self) -> None:
        """He (fan-out, per group) convolutions, unit BatchNorm, identity residual blocks."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                fan_out = kh * kw * module.out_channels // module.groups
                nn.init.normal_(module.weight, std=math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            # Residual blocks start as the identity (last BatchNorm scale 0), which keeps
            # a deep stack stable before its BatchNorm statistics have been learned.
            if getattr(block, "residual", False) and isinstance(block.project, nn.Sequential):
                nn.init.zeros_(block.project[1].weight)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The map after the lambda layer, ``[B, head, H / 2^s, W / 2^s]``."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input [B, {self.in_channels}, H, W], got {list(x.shape)}")
        h = self.conv_head(self.blocks(self.stem(x)))
        return self.act(self.norm(self.lambda_layer(h)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``[B, head]`` of images ``x`` ``[B, C, H, W]``."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier output ``[B, num_outputs]``."""
        return self.classifier(self.dropout(self.forward_features(x)))
