"""Helpers of the monitoring unit tests (a module of its own: conftest is not importable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000


def write_clip(path: Path, amp: float = 0.1, seconds: float = 0.5, seed: int = 0,
               sr: int = SR, subtype: str = "PCM_16") -> Path:
    """White noise at an amplitude (loud = anomalous for the fixture's detectors)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = amp * rng.standard_normal(int(sr * seconds))
    # loud, not clipped: a clipped clip is a sensor problem, never a machine anomaly
    x = (x / max(1.0, float(np.abs(x).max()))).astype(np.float32)
    sf.write(path, x, sr, subtype=subtype)
    return path
