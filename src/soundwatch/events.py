"""Anomalous events of a long recording: flagged windows merged into time intervals."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from soundwatch.atomic import atomic_open, write_json

__all__ = ["Event", "merge_events", "write_events"]


@dataclass(frozen=True)
class Event:
    """One anomalous stretch of a recording.

    Attributes:
        start_s: Start of the first flagged window (s).
        end_s: End of the last flagged window (s).
        peak_s: Start of the highest-scoring window (s).
        peak_score: Its score.
        windows: Number of flagged windows merged.
    """

    start_s: float
    end_s: float
    peak_s: float
    peak_score: float
    windows: int

    @property
    def duration_s(self) -> float:
        """Length of the event (s)."""
        return self.end_s - self.start_s


def merge_events(
    starts: Sequence[float],
    ends: Sequence[float],
    scores: Sequence[float],
    decisions: Sequence[int],
    gap: float = 0.0,
) -> list[Event]:
    """Merge flagged windows that overlap or touch (or are ``gap`` seconds apart at most).

    Args:
        starts: Window start times (s), ascending.
        ends: Window end times (s).
        scores: Window scores.
        decisions: 1 where a window is anomalous.
        gap: Largest silence (s) between two flagged windows of one event.

    Returns:
        The events in time order.
    """
    s = np.asarray(starts, dtype=np.float64)
    e = np.asarray(ends, dtype=np.float64)
    v = np.asarray(scores, dtype=np.float64)
    d = np.asarray(decisions).astype(bool)
    events: list[Event] = []
    current: list[int] = []

    def close() -> None:
        if not current:
            return
        idx = np.asarray(current)
        top = int(idx[np.argmax(v[idx])])
        events.append(Event(float(s[idx[0]]), float(e[idx].max()), float(s[top]),
                            float(v[top]), len(idx)))
        current.clear()

    for i in np.flatnonzero(d):
        if current and s[i] > e[np.asarray(current)].max() + gap:
            close()
        current.append(int(i))
    close()
    return events


def write_events(
    events: Sequence[Event], csv_path: str | os.PathLike[str],
    json_path: str | os.PathLike[str], **facts: object,
) -> tuple[Path, Path]:
    """Write events as CSV (``start_s,end_s,duration_s,peak_s,peak_score,windows``) and JSON.

    Args:
        events: The events.
        csv_path: CSV destination.
        json_path: JSON destination (``{"events": [...], **facts}``).
        **facts: Extra top-level JSON fields (file, machine, threshold...).
    """
    csv_path, json_path = Path(csv_path), Path(json_path)
    with atomic_open(csv_path, "w", encoding="utf-8", newline="") as handle:
        handle.write("start_s,end_s,duration_s,peak_s,peak_score,windows\n")
        for ev in events:
            handle.write(f"{ev.start_s:.6g},{ev.end_s:.6g},{ev.duration_s:.6g},"
                         f"{ev.peak_s:.6g},{ev.peak_score!r},{ev.windows}\n")
    items = [{**asdict(ev), "duration_s": ev.duration_s} for ev in events]
    write_json(json_path, {**facts, "events": items})
    return csv_path, json_path
