"""Score windows of a clip's features: one torch op that scoring and the ONNX export share."""

from __future__ import annotations

from typing import Any

__all__ = ["score_windows"]


def score_windows(chans: Any, window: int, hop: int) -> Any:
    """Windows of ``window`` frames along the last axis of ``chans`` ``[B, C, T]``.

    Windows start every ``hop`` frames, plus one aligned to the end when the hop does not
    land there, so every frame is scored; a clip shorter than a window gives one window
    padded by repeating its last frame. Written with tensor shapes only, so that
    :meth:`ComposedDetector.view_items` and the exported graph (which traces it with a
    dynamic length) cut the same windows.

    Args:
        chans: Features ``[B, C, T]`` (a torch tensor).
        window: Frames per window.
        hop: Frames between window starts.

    Returns:
        ``[B, C, n, window]``.
    """
    import torch

    length = torch._shape_as_tensor(chans)[-1]  # traced as a dynamic dimension
    span = torch.clamp(length - window, min=0)
    count = torch.div(span + hop - 1, hop, rounding_mode="floor") + 1
    starts = torch.clamp(torch.arange(count) * hop, max=span)
    index = starts[:, None] + torch.arange(window)[None, :]
    index = torch.minimum(index, length - 1)  # edge padding of a short clip
    return chans[:, :, index]
