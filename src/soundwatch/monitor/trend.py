"""Per-machine daily score summaries of the history (the page's trend view)."""

from __future__ import annotations

import datetime as _dt
import sqlite3
import time
from typing import Any

import numpy as np

from soundwatch.errors import ConfigError

__all__ = ["daily_trend"]


def daily_trend(db: Any, machine: str, days: int = 30,
                now: float | None = None) -> list[dict[str, Any]]:
    """One summary per UTC day with clips of a machine, over the last ``days`` days.

    Each day: ``day`` (``YYYY-MM-DD``), ``clips``, ``scored`` (status ok), ``anomalies``,
    ``sensor``, ``errors``, ``median``, ``p90``, ``max`` and ``mean`` of the scores of scored
    clips, ``threshold`` (the latest of the day) and ``anomaly_rate`` (anomalies / scored).
    A slow drift of the median towards the threshold shows wear before alarms do.

    Args:
        db: The history database file (or a :class:`~soundwatch.monitor.history.History`).
        machine: Machine type.
        days: How many days back from ``now``.
        now: Unix time of the end (default: now).

    Returns:
        The days, oldest first.

    Raises:
        ConfigError: ``days`` below 1, or the database cannot be read.
    """
    if days < 1:
        raise ConfigError("days", f"expected at least 1, got {days}")
    path = getattr(db, "path", db)
    end = time.time() if now is None else float(now)
    since = end - days * 86400.0
    try:
        # a read-only connection of its own: summaries never take the writer's lock
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute(
                "SELECT ts, status, decision, score, threshold FROM clips "
                "WHERE machine = ? AND ts > ? AND ts <= ? ORDER BY ts", (machine, since, end)
            ).fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(path, f"cannot read the history database ({exc})") from exc
    by_day: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        day = _dt.datetime.fromtimestamp(row[0], _dt.UTC).date().isoformat()
        by_day.setdefault(day, []).append(row)
    out = []
    for day, items in by_day.items():
        scored = [r for r in items if r[1] == "ok" and r[3] is not None]
        scores = np.array([r[3] for r in scored], dtype=np.float64)
        thresholds = [r[4] for r in items if r[4] is not None]
        anomalies = sum(1 for r in scored if r[2] == 1)

        def stat(fn: Any, values: np.ndarray = scores) -> float | None:
            return float(fn(values)) if values.size else None

        out.append({
            "day": day, "clips": len(items), "scored": len(scored), "anomalies": anomalies,
            "sensor": sum(1 for r in items if r[1] == "sensor"),
            "errors": sum(1 for r in items if r[1] == "error"),
            "median": stat(np.median), "p90": stat(lambda v: np.quantile(v, 0.9)),
            "max": stat(np.max), "mean": stat(np.mean),
            "threshold": float(thresholds[-1]) if thresholds else None,
            "anomaly_rate": anomalies / len(scored) if scored else None,
        })
    return out
