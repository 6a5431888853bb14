"""Pretrained encoders: CREPE tiny (weights in the package) and full (`[pretrained]` extra)."""

from __future__ import annotations

from typing import Any

from soundwatch.detectors.encoders import EncoderModel, InputSpec, register_encoder
from soundwatch.errors import DetectorError

__all__ = ["crepe_full", "crepe_tiny", "finetune_blocks"]

_FRAME = 1024


def finetune_blocks(name: str, params: dict[str, Any]) -> int:
    """The ``finetune`` parameter of a CREPE entry (top blocks trained; 0: frozen).

    Raises:
        DetectorError: Not a whole number from 0 to ``layer``.
    """
    value, layer = params.get("finetune", 0), params.get("layer", 6)
    top = layer if isinstance(layer, int) and not isinstance(layer, bool) and 1 <= layer <= 6 \
        else 6
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise DetectorError(f"encoder {name}.finetune", f"must be a whole number of blocks "
                            f"from 0 to layer ({top}), got {value!r}")
    return value


def _crepe(name: str, capacity: str, spec: InputSpec, layer: Any, hop: Any,
           standardise: Any, finetune: Any = 0) -> EncoderModel:
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
    finetune_blocks(name, {"finetune": finetune, "layer": layer})
    try:
        return EncoderModel(None, CrepeWindowEncoder(capacity, layer, hop, standardise,
                                                     finetune))
    except DetectorError as exc:
        raise DetectorError(f"encoder {name}", exc.reason) from exc


@register_encoder("crepe-tiny", trainable=False,
                  trains=lambda p: finetune_blocks("crepe-tiny", p) > 0)
def crepe_tiny(spec: InputSpec, *, layer: int = 6, hop: int = 1024,
               standardise: bool = True, finetune: int = 0) -> EncoderModel:
    """Pretrained CREPE tiny (pitch network, 1024-sample 16 kHz frames); weights in the package.

    Frozen by default; ``finetune=k`` trains its top ``k`` blocks with an objective (e.g.
    ``-p objective=auxiliary``).

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz (1024 samples:
            one frame per window; longer windows average their frames).
        layer: Block whose activations are the embedding, 1..6 (dimension 16384, 1024,
            512, 256, 256, 256).
        hop: Samples between frames inside a window longer than 1024.
        standardise: Standardise each frame (zero mean, unit std), as CREPE was trained.
        finetune: Top blocks (up to ``layer``) trained by the detector's objective; 0
            keeps the network frozen (no objective then). Batch norm keeps its pretrained
            statistics either way.
    """
    return _crepe("crepe-tiny", "tiny", spec, layer, hop, standardise, finetune)


@register_encoder("crepe-full", trainable=False,
                  trains=lambda p: finetune_blocks("crepe-full", p) > 0)
def crepe_full(spec: InputSpec, *, layer: int = 6, hop: int = 1024,
               standardise: bool = True, finetune: int = 0) -> EncoderModel:
    """Pretrained CREPE full (22M parameters, about 30x tiny's cost); needs [pretrained].

    Frozen by default; ``finetune=k`` trains its top ``k`` blocks with an objective.

    Args:
        spec: Windows ``[1, samples]`` of the waveform front-end at 16 kHz.
        layer: Block whose activations are the embedding, 1..6 (dimension 131072, 8192,
            4096, 2048, 2048, 2048).
        hop: Samples between frames inside a window longer than 1024.
        standardise: Standardise each frame (zero mean, unit std), as CREPE was trained.
        finetune: Top blocks (up to ``layer``) trained by the detector's objective; 0
            keeps the network frozen (no objective then).
    """
    return _crepe("crepe-full", "full", spec, layer, hop, standardise, finetune)
