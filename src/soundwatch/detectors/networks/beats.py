"""BEATs (Chen et al. 2022, arXiv:2212.09058): a plain nn.Module reading the official checkpoints.

Written from the paper and the published architecture: 128-bin Kaldi log-mel filterbanks
(25 ms / 10 ms at 16 kHz) normalised with the published mean and standard deviation, 16x16
patches embedded by a convolution, a layer norm, a projection, a convolutional positional
embedding (weight-normalised grouped 1-D convolution), then post-norm Transformer layers with
DeepNorm residual scaling and gated relative-position biases (bucketed as T5). Module and
parameter names follow the official checkpoints' ``model`` state dict, so that it loads with
``strict=True``. The attention is written in the usual scaled-dot-product form; the reference
subtracts the row maximum and rescales (a numerically equivalent softmax).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BEATS_FBANK_MEAN", "BEATS_FBANK_STD", "Beats", "BeatsConfig", "kaldi_fbank"]

BEATS_FBANK_MEAN = 15.41663
"""Mean of the Kaldi log-mel filterbank over AudioSet (published with BEATs)."""
BEATS_FBANK_STD = 6.55582
"""Standard deviation of the same (the input is ``(fbank - mean) / (2 * std)``)."""

ACTIVATIONS = ("gelu", "relu")


@dataclass
class BeatsConfig:
    """The ``cfg`` dictionary of a BEATs checkpoint (fields used by the encoder).

    Keys of a checkpoint's ``cfg`` that do not change the network's forward pass (dropout
    rates, layer drop, the gradient-decay ratio) are accepted and kept, but unused at
    inference; unknown keys are ignored.
    """

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_class: int = 527
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> BeatsConfig:
        """The configuration from a checkpoint's ``cfg`` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


def _mel(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(freq / 700.0)


def _kaldi_mel_banks(n_mels: int, n_fft: int, sr: float, low: float, high: float
                     ) -> torch.Tensor:
    """Kaldi's triangular filters (equal spacing on its mel scale), ``[n_mels, n_fft//2 + 1]``."""
    half = n_fft // 2
    mel_low, mel_high = _mel(torch.tensor(low)), _mel(torch.tensor(high))
    delta = (mel_high - mel_low) / (n_mels + 1)
    index = torch.arange(n_mels, dtype=torch.float32).unsqueeze(1)
    left, centre, right = (mel_low + index * delta, mel_low + (index + 1) * delta,
                           mel_low + (index + 2) * delta)
    mel = _mel(torch.arange(half, dtype=torch.float32) * (sr / n_fft)).unsqueeze(0)
    up, down = (mel - left) / (centre - left), (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1))  # Kaldi gives the Nyquist bin no weight


@functools.lru_cache(maxsize=4)
def _windowed_dft(length: int, n_fft: int, window: str = "povey"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi's window times the real DFT basis of ``n_fft`` points, ``[length, n_fft//2 + 1]``.

    A DFT as matrix products rather than ``torch.fft.rfft``: ONNX exports it.
    """
    if window not in ("povey", "hanning"):
        raise ValueError(f"window must be 'povey' or 'hanning', got {window!r}")
    hann = torch.hann_window(length, periodic=False, dtype=torch.float64)
    taper = hann.pow(0.85) if window == "povey" else hann
    n = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64).unsqueeze(0)
    angle = 2 * math.pi * n * k / n_fft
    cos, sin = taper.unsqueeze(1) * torch.cos(angle), taper.unsqueeze(1) * torch.sin(angle)
    return cos.float(), sin.float()


def kaldi_fbank(wave: torch.Tensor, sr: int = 16000, n_mels: int = 128,
                frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0,
                low_freq: float = 20.0, window: str = "povey") -> torch.Tensor:
    """Kaldi ``compute-fbank-feats`` log-mel energies with its defaults (no dither).

    Written here (in torch, differentiable) because torchaudio's ``compliance.kaldi`` does
    not load with soundwatch's CPU torch; it follows Kaldi's defaults: frames cut without
    padding (``snip_edges``), DC offset removed, pre-emphasis 0.97, Povey window, FFT size
    rounded up to a power of two, power spectrum, triangular mel filters from ``low_freq``
    to Nyquist, natural log floored at float epsilon.

    Args:
        wave: ``[B, N]`` samples (BEATs scales [-1, 1] audio by 2**15 first).
        sr: Sample rate.
        n_mels: Filters.
        frame_length_ms: Frame length.
        frame_shift_ms: Frame shift.
        low_freq: Lowest filter edge in Hz.
        window: ``"povey"`` (Kaldi's default, BEATs) or ``"hanning"`` (AST).

    Returns:
        ``[B, frames, n_mels]`` with ``frames = 1 + (N - length) // shift``.
    """
    length = int(sr * frame_length_ms / 1000)
    shift = int(sr * frame_shift_ms / 1000)
    if wave.shape[-1] < length:
        raise ValueError(f"need at least {length} samples for one frame, got {wave.shape[-1]}")
    frames = wave.unfold(-1, length, shift)  # [B, n, length]
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = frames - 0.97 * previous
    n_fft = 1 << (length - 1).bit_length()
    cos, sin = (b.to(frames.device, frames.dtype) for b in _windowed_dft(length, n_fft, window))
    power = (frames @ cos).pow(2) + (frames @ sin).pow(2)
    banks = _kaldi_mel_banks(n_mels, n_fft, float(sr), low_freq, sr / 2).to(power)
    energies = power @ banks.T
    return torch.clamp(energies, min=torch.finfo(energies.dtype).eps).log()


class _WeightNormConv1d(nn.Module):
    """Grouped 1-D convolution with weight normalisation over the kernel axis (dim 2).

    Holds ``weight_g`` ``[1, 1, K]`` and ``weight_v`` ``[C, C/groups, K]`` as the official
    checkpoints store them (the weight is ``g * v / ||v||``, the norm over dims 0 and 1).
    """

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.groups, self.padding = groups, kernel // 2
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T]`` -> ``[B, C, T + 1 - K % 2]``."""
        v = self.weight_v
        weight = self.weight_g * v / v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _PositionalConv(nn.Sequential):
    """Convolutional positional embedding: conv, trim to the input length, GELU."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__(_WeightNormConv1d(channels, kernel, groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, C]`` -> ``[B, T, C]``."""
        out = self[0](x.transpose(1, 2))[..., : x.shape[1]]
        return F.gelu(out).transpose(1, 2)


def relative_buckets(length: int, num_buckets: int, max_distance: int,
                     device: torch.device | None = None) -> torch.Tensor:
    """Bidirectional T5-style bucket of every (query, key) offset, ``[L, L]`` long.

    Half the buckets per direction; the first half of those exact, the rest logarithmic up
    to ``max_distance`` (clipped to the last bucket).
    """
    position = torch.arange(length, device=device)
    offset = position[None, :] - position[:, None]  # key - query
    half = num_buckets // 2
    buckets = (offset > 0).long() * half
    distance = offset.abs()
    exact = half // 2
    far = exact + (torch.log(distance.clamp(min=1).float() / exact)
                   / math.log(max_distance / exact) * (half - exact)).long()
    far = far.clamp(max=half - 1)
    return buckets + torch.where(distance < exact, distance, far)


class _Attention(nn.Module):
    """Multi-head self-attention with an optional gated relative-position bias."""

    def __init__(self, dim: int, heads: int, gru_rel_pos: bool,
                 relative_bias: nn.Embedding | None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"encoder_embed_dim {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.q_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.gru_rel_pos = gru_rel_pos
        if gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        if relative_bias is not None:
            self.relative_attention_bias = relative_bias  # one table shared by every layer

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor | None) -> torch.Tensor:
        """``[B, L, D]`` (+ bias ``[H, L, L]``) -> ``[B, L, D]``."""
        q = self._split(self.q_proj(x))
        k, v = self._split(self.k_proj(x)), self._split(self.v_proj(x))
        scores = (q * self.head_dim ** -0.5) @ k.transpose(-1, -2)  # [B, H, L, L]
        if position_bias is not None:
            bias = position_bias.unsqueeze(0)
            if self.gru_rel_pos:
                batch, heads, length, _ = q.shape
                gates = torch.sigmoid(self.grep_linear(q).view(batch, heads, length, 2, 4)
                                      .sum(-1))
                gate_a, gate_b = gates[..., :1], gates[..., 1:]
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
            scores = scores + bias
        out = torch.softmax(scores, dim=-1) @ v
        return self.out_proj(out.transpose(1, 2).reshape(x.shape))


class _Layer(nn.Module):
    """Transformer layer: attention and feed-forward, pre- or post-norm (DeepNorm scaling)."""

    def __init__(self, cfg: BeatsConfig, relative_bias: nn.Embedding | None) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = _Attention(dim, cfg.encoder_attention_heads, cfg.gru_rel_pos,
                                    relative_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = F.gelu if cfg.activation_fn == "gelu" else F.relu
        self.pre_norm = cfg.layer_norm_first
        self.alpha = (2.0 * cfg.encoder_layers) ** 0.25 if cfg.deep_norm else 1.0

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor | None) -> torch.Tensor:
        """``[B, L, D]`` -> ``[B, L, D]``."""
        if self.pre_norm:
            x = x + self.self_attn(self.self_attn_layer_norm(x), position_bias)
            return x + self.fc2(self.activation(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, position_bias))
        return self.final_layer_norm(x * self.alpha + self.fc2(self.activation(self.fc1(x))))


class _Encoder(nn.Module):
    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.pos_conv = _PositionalConv(dim, cfg.conv_pos, cfg.conv_pos_groups)
        table = (nn.Embedding(cfg.num_buckets, cfg.encoder_attention_heads)
                 if cfg.relative_position_embedding else None)
        self.cfg = cfg
        self.layers = nn.ModuleList(_Layer(cfg, table) for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim)
        self.table = [table]  # not a submodule: its parameters are the layers' shared one

    def forward(self, x: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        x = x + self.pos_conv(x)
        if not self.cfg.layer_norm_first:
            x = self.layer_norm(x)
        bias = None
        if self.table[0] is not None:
            buckets = relative_buckets(x.shape[1], self.cfg.num_buckets, self.cfg.max_distance,
                                       x.device)
            bias = self.table[0](buckets).permute(2, 0, 1)  # [H, L, L]
        for layer in list(self.layers)[:layers]:
            x = layer(x, bias)
        if self.cfg.layer_norm_first and layers is None:
            x = self.layer_norm(x)
        return x


class Beats(nn.Module):
    """The BEATs encoder (and, for fine-tuned checkpoints, its AudioSet classifier).

    Args:
        cfg: The checkpoint's configuration.

    Raises:
        ValueError: An unsupported activation or inconsistent sizes.
    """

    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        if cfg.activation_fn not in ACTIVATIONS:
            raise ValueError(f"activation_fn must be one of {ACTIVATIONS}, got "
                             f"{cfg.activation_fn!r}")
        if cfg.deep_norm and cfg.layer_norm_first:
            raise ValueError("deep_norm and layer_norm_first exclude each other")
        self.cfg = cfg
        if cfg.embed_dim != cfg.encoder_embed_dim:
            self.post_extract_proj = nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
        patch = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=patch, stride=patch,
                                         bias=cfg.conv_bias)
        self.encoder = _Encoder(cfg)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        if cfg.finetuned_model:
            self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)
        self.num_features = cfg.encoder_embed_dim

    @property
    def min_samples(self) -> int:
        """Shortest 16 kHz waveform giving one patch (``input_patch_size`` frames)."""
        return 400 + 160 * (self.cfg.input_patch_size - 1)

    def fbank(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, N]`` in [-1, 1] at 16 kHz -> normalised fbank ``[B, frames, 128]``."""
        fbank = kaldi_fbank(wave * 2 ** 15)
        return (fbank - BEATS_FBANK_MEAN) / (2 * BEATS_FBANK_STD)

    def tokens(self, wave: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """Waveforms ``[B, N]`` -> patch tokens ``[B, time_patches * freq_patches, D]``.

        Tokens are in time-major order (all frequency patches of the first time step
        first). ``layers``: run only the first ``layers`` Transformer layers.
        """
        patches = self.patch_embedding(self.fbank(wave).unsqueeze(1))  # [B, E, T', F']
        x = self.layer_norm(patches.flatten(2).transpose(1, 2))
        if hasattr(self, "post_extract_proj"):
            x = self.post_extract_proj(x)
        return self.encoder(x, layers)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Class probabilities of a fine-tuned checkpoint, or the tokens of a pre-trained one.

        Fine-tuned: the sigmoid of the token-averaged logits, ``[B, predictor_class]``.
        """
        x = self.tokens(wave)
        if hasattr(self, "predictor"):
            return torch.sigmoid(self.predictor(x).mean(dim=1))
        return x
