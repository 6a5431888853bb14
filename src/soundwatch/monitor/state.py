"""A machine's state over a window of recent clips (the page's badge), and sensor statuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soundwatch.monitor.alerts import AlertRule, counts_for_machine, is_machine_anomaly

__all__ = ["DEFAULT_WINDOW", "machine_state", "verdict_columns"]

DEFAULT_WINDOW = 20
"""Clips the page's state summarises by default."""


def verdict_columns(verdict: Any) -> tuple[str, dict[str, Any]]:
    """The history status and columns of a scoring verdict.

    A verdict may carry a sensor status (``status`` ``ok``/``sensor``/``error`` and
    ``status_reason``); one without is ``ok``. The reason goes to the ``error`` column.

    Returns:
        ``(status, columns)`` for :meth:`~soundwatch.monitor.history.History.record`.
    """
    fields = dict(verdict.fields())
    status = str(fields.pop("status", None) or getattr(verdict, "status", None) or "ok")
    reason = fields.pop("status_reason", None) or getattr(verdict, "status_reason", None)
    if status != "ok" and reason:
        fields["error"] = str(reason)
    return status, fields


def machine_state(clips: Sequence[dict[str, Any]], rule: AlertRule,
                  window: int = DEFAULT_WINDOW) -> dict[str, Any]:
    """Summarise a machine's latest clips (oldest first) for the page's badge.

    The state is ``idle`` (no clip), ``anomaly`` (the alert rule holds now: ``k`` of the
    last ``n`` scored clips are anomalous), ``watch`` (some anomalies in the window, but
    not enough for the rule), ``sensor`` or ``error`` (the latest clip has a sensor fault,
    or could not be scored, and the window shows no anomaly) or ``normal``. Sensor faults and errors
    are never machine anomalies.

    Args:
        clips: The machine's clips, oldest first (at least the last ``window``).
        rule: The alert rule.
        window: How many of the latest clips to count.

    Returns:
        ``state``, ``window`` (its size), ``window_clips``, ``window_anomalies``,
        ``window_sensor``, ``window_errors``, ``rule`` (``k``, ``n``, ``cooldown_s``,
        ``text``) and ``rule_holds``.
    """
    recent = list(clips)[-max(1, int(window)):]
    anomalies = sum(is_machine_anomaly(c) for c in recent)
    sensor = sum(c.get("status") == "sensor" for c in recent)
    errors = sum(c.get("status") == "error" for c in recent)
    holds = rule.holds(list(clips))
    if not recent:
        state = "idle"
    elif holds:
        state = "anomaly"
    elif anomalies:
        state = "watch"
    elif not counts_for_machine(recent[-1]):
        state = "error" if recent[-1].get("status") == "error" else "sensor"
    else:
        state = "normal"
    return {"state": state, "window": int(window), "window_clips": len(recent),
            "window_anomalies": anomalies, "window_sensor": sensor, "window_errors": errors,
            "rule": rule.as_dict(), "rule_holds": holds}
