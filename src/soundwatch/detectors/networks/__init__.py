"""Pure nn.Module networks used by the encoders (no training or data code), and weight files."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["load_weights", "save_weights"]


def save_weights(path: str | Path, state: Mapping[str, Any]) -> None:
    """``torch.save`` a dict of tensors (CPU copies) atomically; same tensors, same bytes.

    The archive is written to memory first: saved to a file, torch would store that
    (temporary, random) file's name inside the archive.
    """
    import torch

    from soundwatch.atomic import atomic_path

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(buffer.getvalue())


def load_weights(path: str | Path) -> dict[str, Any]:
    """Load a dict of tensors written by :func:`save_weights` (``weights_only=True``).

    Raises:
        DetectorError: Missing, truncated or not a weights file (one line, file named).
    """
    import torch

    from soundwatch.errors import DetectorError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise DetectorError(path, "weights file missing") from exc
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DetectorError(path, f"cannot read weights (truncated or not a weights file): "
                            f"{first}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise DetectorError(path, "not a dict of tensors")
    return state
