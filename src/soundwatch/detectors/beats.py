"""BEATs encoder from the official checkpoint files the user downloads (``cfg`` + ``model``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from soundwatch.detectors.encoders import EncoderModel, InputSpec, check_whole, register_encoder
from soundwatch.detectors.networks.beats import Beats, BeatsConfig
from soundwatch.errors import DetectorError

__all__ = ["BEATS_CHECKPOINT_ENV", "BeatsWindowEncoder", "beats", "load_beats_checkpoint"]

log = logging.getLogger(__name__)

BEATS_CHECKPOINT_ENV = "SOUNDWATCH_BEATS_CHECKPOINT"
"""Environment variable naming the default BEATs checkpoint file."""

BEATS_SOURCE = ("https://github.com/microsoft/unilm/tree/master/beats (e.g. "
                "BEATs_iter3_plus_AS2M.pt; MIT licence)")


def load_beats_checkpoint(path: str | os.PathLike[str]) -> Beats:
    """The BEATs network of an official checkpoint, loaded strictly (names and shapes).

    Args:
        path: A ``.pt`` file holding ``{"cfg": dict, "model": state_dict}``, as Microsoft
            publishes them (read with ``torch.load(weights_only=True)``).

    Returns:
        The network in eval mode, parameters frozen (``requires_grad`` False).

    Raises:
        DetectorError: The file is missing, unreadable, not a BEATs checkpoint, or its
            weights do not match its configuration.
    """
    where = str(path)
    try:
        checkpoint = torch.load(where, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DetectorError(where, "BEATs checkpoint not found") from None
    except OSError as exc:
        raise DetectorError(where, f"cannot read the BEATs checkpoint ({exc.strerror or exc})"
                            ) from None
    except Exception as exc:  # torch.load raises many types for a file that is not a checkpoint
        raise DetectorError(where, f"not a torch checkpoint ({type(exc).__name__})") from None
    if (not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("cfg"), Mapping)
            or not isinstance(checkpoint.get("model"), Mapping)):
        raise DetectorError(where, "not a BEATs checkpoint (expected a dictionary with 'cfg' "
                            "and 'model')")
    return beats_from_state(checkpoint["cfg"], checkpoint["model"], where)


def beats_from_state(cfg: Mapping[str, Any], state: Mapping[str, Any], where: str) -> Beats:
    """The network for ``cfg`` with ``state`` loaded strictly (errors name ``where``)."""
    try:
        net = Beats(BeatsConfig.from_dict(cfg))
    except (TypeError, ValueError) as exc:
        raise DetectorError(where, f"unsupported BEATs configuration: {exc}") from None
    try:
        net.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise DetectorError(where, f"weights do not match the BEATs configuration: {detail}"
                            ) from None
    net.requires_grad_(False)
    return net.eval()


class BeatsWindowEncoder(nn.Module):
    """BEATs over 16 kHz waveform windows: ``[B, 1, T]`` -> ``[B, D]`` (mean of its tokens).

    Frozen by default; ``finetune = k > 0`` makes the top ``k`` Transformer layers
    trainable (the network stays in eval mode: no dropout).

    Args:
        net: A loaded :class:`Beats`.
        layers: Transformer layers run (``None``: all); the embedding is their output.
        finetune: Top layers (of those run) made trainable.
    """

    input_kind = "waveform"
    trainable = False

    def __init__(self, net: Beats, layers: int | None = None, finetune: int = 0) -> None:
        super().__init__()
        self.beats = net
        self.layers = layers
        self.num_features = net.num_features
        used = list(net.encoder.layers)[:layers]
        for layer in used[len(used) - finetune:] if finetune else []:
            layer.requires_grad_(True)
        self.finetune = finetune

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``[B, 1, T]`` or ``[B, T]`` -> embeddings ``[B, D]``."""
        if x.ndim == 3:
            if x.shape[1] != 1:
                raise ValueError(f"BEATs reads one waveform channel, got {x.shape[1]}")
            x = x[:, 0]
        return self.beats.tokens(x, self.layers).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features`."""
        return self.forward_features(x)

    def train(self, mode: bool = True) -> BeatsWindowEncoder:
        """Stays in eval mode (frozen, or fine-tuned without dropout)."""
        return super().train(False)


def _finetune(params: dict[str, Any]) -> int:
    return check_whole("beats", "finetune", params.get("finetune", 0), 0)


@register_encoder("beats", trainable=False, trains=lambda p: _finetune(p) > 0)
def beats(spec: InputSpec, *, checkpoint: str | None = None, layers: int | None = None,
          finetune: int = 0, random_init: dict[str, Any] | None = None) -> EncoderModel:
    """BEATs (Microsoft, MIT) from an official checkpoint file; mean of its patch tokens.

    Download a checkpoint from https://github.com/microsoft/unilm/tree/master/beats (e.g.
    ``BEATs_iter3_plus_AS2M.pt``) and pass its path, or set ``SOUNDWATCH_BEATS_CHECKPOINT``.

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz (at least
            2,800 samples: one 16-frame patch).
        checkpoint: The ``.pt`` file (default: ``$SOUNDWATCH_BEATS_CHECKPOINT``).
        layers: Transformer layers run (default all); fewer is faster and often better
            for machine sounds.
        finetune: Top layers trained by the detector's objective; 0 keeps BEATs frozen.
        random_init: A ``cfg`` dictionary: a randomly initialised network of that size
            instead of a checkpoint (tests, or training from scratch); no weights read.
    """
    if spec.layout != "windows" or spec.channels != 1:
        raise DetectorError("encoder beats", "reads windows of a 16 kHz waveform (one "
                            "channel); choose the waveform front-end")
    if random_init is not None:
        if not isinstance(random_init, Mapping):
            raise DetectorError("encoder beats.random_init", "must be a cfg dictionary")
        try:
            net = Beats(BeatsConfig.from_dict(random_init)).eval()
        except (TypeError, ValueError) as exc:
            raise DetectorError("encoder beats.random_init", str(exc)) from None
        net.requires_grad_(False)
    else:
        path = checkpoint or os.environ.get(BEATS_CHECKPOINT_ENV)
        if not path:
            raise DetectorError("encoder beats.checkpoint", f"no checkpoint given: download "
                                f"one from {BEATS_SOURCE} and pass -p encoder__checkpoint=PATH "
                                f"or set {BEATS_CHECKPOINT_ENV}")
        net = load_beats_checkpoint(Path(path).expanduser())
        log.info("BEATs: %s (%d layers, dim %d)", path, net.cfg.encoder_layers,
                 net.num_features)
    n_layers = net.cfg.encoder_layers
    if layers is not None:
        check_whole("beats", "layers", layers, 1, n_layers)
    check_whole("beats", "finetune", finetune, 0, layers or n_layers)
    if spec.window is not None and spec.window < net.min_samples:
        raise DetectorError("encoder beats", f"needs windows of at least {net.min_samples} "
                            f"samples, got {spec.window}")
    return EncoderModel(None, BeatsWindowEncoder(net, layers, finetune))
