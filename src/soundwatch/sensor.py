"""Sensor health of a recording (silent, clipped, dead channel, DC offset, wrong rate), numpy only.

A recording that says more about the microphone or the recorder than about the machine
gets the status ``sensor`` with a reason; scoring keeps its score but never counts it
as a machine anomaly (its decision is 0). The scores tables, the runtime's CSV and the
monitoring history carry the outcome in two columns (see docs/evaluation.md):

- ``status``: ``ok`` (scored and decided), ``sensor`` (a sensor problem: not decided),
  ``error`` (not scored: unreadable or rejected);
- ``status_reason``: the reason in a few words (empty when ``ok``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "STATUS_OK",
    "STATUS_SENSOR",
    "STATUS_ERROR",
    "STATUSES",
    "SensorCheck",
    "check_file",
    "check_signal",
    "rate_problem",
]

STATUS_OK = "ok"
STATUS_SENSOR = "sensor"
STATUS_ERROR = "error"
STATUSES = (STATUS_OK, STATUS_SENSOR, STATUS_ERROR)
"""The values of the ``status`` column."""

SILENT_PEAK = 10 ** (-90 / 20)
"""A channel whose peak is below -90 dBFS holds no sound (a 16-bit file's 1 LSB is -90 dBFS)."""

CLIP_LEVEL = 0.999
"""Samples at or above this magnitude (of full scale, 1.0) are at the converter's limit."""

CLIP_SHARE = 0.001
"""A recording with more than this share of samples at the limit is clipped."""

DC_LEVEL = 0.05
"""A mean above this (of full scale) that also exceeds the signal's spread is a DC offset."""


@dataclass(frozen=True)
class SensorCheck:
    """The outcome of a sensor check.

    Attributes:
        status: ``"ok"``, ``"sensor"`` or ``"error"``.
        reason: Why (``"silent (peak -120 dBFS)"``, ...), ``""`` when ok.
    """

    status: str = STATUS_OK
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Whether the recording can be decided on."""
        return self.status == STATUS_OK


def _dbfs(value: float) -> str:
    return "-inf" if value <= 0 else f"{20 * np.log10(value):.0f}"


def check_signal(
    samples: np.ndarray,
    sr: int,
    expected_rates: Sequence[int] = (),
    channel: int | str | None = None,
) -> SensorCheck:
    """Check decoded samples for sensor problems.

    Checks, all reported: silent (peak below :data:`SILENT_PEAK`), dead channel (one
    channel of a multi-channel file silent or constant while others carry sound),
    clipped (over :data:`CLIP_SHARE` of the samples at :data:`CLIP_LEVEL` of full scale),
    DC offset (mean over :data:`DC_LEVEL` and over the standard deviation) and wrong
    rate (a sample rate the training recordings did not have).

    Args:
        samples: ``(frames,)`` or ``(frames, channels)`` float samples, full scale 1.0.
        sr: Their sample rate.
        expected_rates: The training recordings' sample rates (empty: not checked).
        channel: The channel scoring uses (an index or ``"mean"``; None: 0). Silence,
            clipping and DC offset are judged on it; dead channels on all.

    Returns:
        The check; ``status`` ``"sensor"`` with every problem found in ``reason``.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    reasons: list[str] = []
    if x.size == 0:
        return SensorCheck(STATUS_SENSOR, "no samples")
    highs, lows = x.max(axis=0), x.min(axis=0)
    peaks = np.maximum(highs, -lows)
    spreads = highs - lows
    if channel == "mean":
        used = x.mean(axis=1, dtype=np.float64).astype(np.float32)
    else:
        index = int(channel or 0)
        used = x[:, index if -x.shape[1] <= index < x.shape[1] else 0]
    peak = float(max(used.max(), -used.min()))
    if peak < SILENT_PEAK:
        reasons.append(f"silent (peak {_dbfs(peak)} dBFS)")
    if x.shape[1] > 1:
        live = (peaks >= SILENT_PEAK) & (spreads > 0)
        if live.any() and not live.all():
            dead = [str(i) for i in np.flatnonzero(~live)]
            reasons.append(f"dead channel {', '.join(dead)} of {x.shape[1]}")
    if peak >= SILENT_PEAK:
        at_limit = np.count_nonzero(used >= CLIP_LEVEL) + np.count_nonzero(used <= -CLIP_LEVEL)
        share = at_limit / used.size
        if share > CLIP_SHARE:
            reasons.append(f"clipped ({100 * share:.2g} % of samples at full scale)")
        mean, std = float(np.mean(used, dtype=np.float64)), float(np.std(used, dtype=np.float64))
        if abs(mean) > DC_LEVEL and abs(mean) > std:
            reasons.append(f"DC offset ({mean:+.2f} of full scale)")
    wrong = rate_problem(sr, expected_rates)
    if wrong:
        reasons.append(wrong)
    if reasons:
        return SensorCheck(STATUS_SENSOR, "; ".join(reasons))
    return SensorCheck()


def rate_problem(sr: int, expected_rates: Sequence[int] = ()) -> str:
    """``"wrong rate (8000 Hz; trained on 16000 Hz)"``, or ``""`` (rate known or unchecked)."""
    rates = sorted({int(r) for r in expected_rates})
    if rates and int(sr) not in rates:
        return f"wrong rate ({int(sr)} Hz; trained on {', '.join(str(r) for r in rates)} Hz)"
    return ""


def check_file(
    path: str | os.PathLike[str],
    expected_rates: Sequence[int] = (),
    channel: int | str | None = None,
) -> SensorCheck:
    """Read a file (soundfile) and :func:`check_signal` it.

    An unreadable file gives status ``"error"`` and the reason (scoring reports such
    files on its own; this never raises for them).
    """
    import soundfile as sf

    try:
        with open(Path(path), "rb") as handle:  # a file object: non-UTF-8 names work
            data, sr = sf.read(handle, dtype="float32", always_2d=True)
    except OSError as exc:
        return SensorCheck(STATUS_ERROR, exc.strerror or str(exc))
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        return SensorCheck(STATUS_ERROR, " ".join(str(exc).split()) or type(exc).__name__)
    return check_signal(data, int(sr), expected_rates, channel)
