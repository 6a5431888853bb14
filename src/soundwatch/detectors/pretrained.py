"""Frozen pretrained encoders (``soundwatch[pretrained]``): CREPE tiny and full."""

from __future__ import annotations

from typing import Any

from soundwatch.detectors.encoders import EncoderModel, InputSpec, register_encoder
from soundwatch.errors import DetectorError

__all__ = ["crepe_full", "crepe_tiny"]

_FRAME = 1024


def _crepe(name: str, capacity: str, spec: InputSpec, layer: Any, hop: Any,
           standardise: Any) -> EncoderModel:
    from soundwatch.detectors.networks.crepe import CrepeWindowEncoder

    if spec.layout != "windows" or spec.channels != 1:
        raise DetectorError(f"encoder {name}", "reads windows of a 16 kHz waveform (one "
                            "channel); choose the waveform front-end")
    if spec.window is not None and spec.window < _FRAME:
        raise DetectorError(f"encoder {name}", f"needs windows of at least {_FRAME} samples, "
                            f"got {spec.window}")
    if standardise not in (True, False):
        raise DetectorError(f"encoder {name}.standardise", f"must be true or false, got "
                            f"{standardise!r}")
    try:
        return EncoderModel(None, CrepeWindowEncoder(capacity, layer, hop, standardise))
    except DetectorError as exc:
        raise DetectorError(f"encoder {name}", exc.reason) from None


@register_encoder("crepe-tiny", trainable=False)
def crepe_tiny(spec: InputSpec, *, layer: int = 6, hop: int = 1024,
               standardise: bool = True) -> EncoderModel:
    """Pretrained CREPE tiny (frozen pitch network, 1024-sample 16 kHz frames); needs [pretrained].

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz (1024 samples:
            one frame per window; longer windows average their frames).
        layer: Block whose activations are the embedding, 1..6 (dimension 16384, 1024,
            512, 256, 256, 256).
        hop: Samples between frames inside a window longer than 1024.
        standardise: Standardise each frame (zero mean, unit std), as CREPE was trained.
    """
    return _crepe("crepe-tiny", "tiny", spec, layer, hop, standardise)


@register_encoder("crepe-full", trainable=False)
def crepe_full(spec: InputSpec, *, layer: int = 6, hop: int = 1024,
               standardise: bool = True) -> EncoderModel:
    """Pretrained CREPE full (frozen, 22M parameters, about 30x tiny's cost); needs [pretrained].

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz.
        layer: Block whose activations are the embedding, 1..6 (dimension 131072, 8192,
            4096, 2048, 2048, 2048).
        hop: Samples between frames inside a window longer than 1024.
        standardise: Standardise each frame (zero mean, unit std), as CREPE was trained.
    """
    return _crepe("crepe-full", "full", spec, layer, hop, standardise)
