"""Alerts on anomalous clips: a shell command and/or an HTTP webhook, run off the scoring path."""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from soundwatch.errors import ConfigError

__all__ = ["AlertRule", "Alerter", "alert_env", "is_machine_anomaly"]

log = logging.getLogger(__name__)


def is_machine_anomaly(record: dict[str, Any]) -> bool:
    """Whether a recorded clip counts as a machine anomaly.

    Only a scored clip (status ``ok``, or no status) with decision 1: a clip whose sensor is
    at fault (status ``sensor``) or that could not be scored (``error``) never does.
    """
    return record.get("status", "ok") == "ok" and record.get("decision") == 1


def counts_for_machine(record: dict[str, Any]) -> bool:
    """Whether a clip tells anything about the machine (scored, not a sensor fault or error)."""
    return record.get("status", "ok") == "ok" and record.get("decision") is not None


@dataclass
class AlertRule:
    """When anomalous clips raise an alert: k of the last n scored clips, then a cool-down.

    Clips with a sensor fault or an error are not machine evidence: they neither count as
    anomalies nor push older clips out of the window. Each machine type has its own window
    and cool-down. ``AlertRule(1, 1, 0)`` (the default) alerts on every anomalous clip.

    Args:
        k: Anomalous clips needed among the last ``n``.
        n: The window, in scored clips.
        cooldown: Seconds after an alert during which the same machine raises no other.
        clock: Time source (seconds), for tests.

    Raises:
        ConfigError: ``k`` or ``n`` below 1, ``k > n`` or a negative cool-down.
    """

    k: int = 1
    n: int = 1
    cooldown: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.n < 1 or self.k < 1 or self.k > self.n:
            raise ConfigError("--alert-k/--alert-n",
                              f"expected 1 <= k <= n, got k={self.k}, n={self.n}")
        if not self.cooldown >= 0:
            raise ConfigError("--cooldown", f"expected seconds >= 0, got {self.cooldown}")
        self._windows: dict[str, deque[int]] = {}
        self._lock = threading.Lock()  # the service submits from several threads
        self._last_alert: dict[str, float] = {}
        self.suppressed = 0

    def describe(self) -> str:
        """The rule in words (shown on the page and by the CLI)."""
        text = ("every anomalous clip" if self.n == 1 else
                f"{self.k} anomalous of the last {self.n} scored clips")
        if self.cooldown:
            text += f", then at most one alert per {self.cooldown:g} s"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready ``k``, ``n``, ``cooldown_s`` and ``text``."""
        return {"k": self.k, "n": self.n, "cooldown_s": self.cooldown, "text": self.describe()}

    def holds(self, clips: list[dict[str, Any]]) -> bool:
        """Whether the rule's condition holds at the end of a machine's clips (oldest first).

        Ignores the cool-down: this is the state a page shows, not whether to send.
        """
        scored = [c for c in clips if counts_for_machine(c)][-self.n:]
        return sum(is_machine_anomaly(c) for c in scored) >= self.k

    def observe(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Take one recorded clip; return the alert facts when it raises an alert, else None.

        The facts: ``anomalies`` in the window, ``window`` (its length so far), ``k``, ``n``.
        """
        if not counts_for_machine(record):
            return None
        with self._lock:
            return self._observe(record)

    def _observe(self, record: dict[str, Any]) -> dict[str, Any] | None:
        machine = str(record.get("machine"))
        window = self._windows.setdefault(machine, deque(maxlen=self.n))
        window.append(1 if is_machine_anomaly(record) else 0)
        hits = sum(window)
        if not is_machine_anomaly(record) or hits < self.k:
            return None
        now = self.clock()
        last = self._last_alert.get(machine)
        if last is not None and now - last < self.cooldown:
            self.suppressed += 1
            log.info("%s: alert suppressed (cool-down, %.0f s left)", machine,
                     self.cooldown - (now - last))
            return None
        self._last_alert[machine] = now
        return {"anomalies": hits, "window": len(window), "k": self.k, "n": self.n}


def alert_env(record: dict[str, Any]) -> dict[str, str]:
    """The ``SOUNDWATCH_*`` variables an ``--on-anomaly`` command gets for a clip.

    ``SOUNDWATCH_PATH`` (the file, or the upload's name), ``SOUNDWATCH_MACHINE``,
    ``SOUNDWATCH_SCORE``, ``SOUNDWATCH_PERCENTILE``, ``SOUNDWATCH_THRESHOLD``,
    ``SOUNDWATCH_CLIP_ID``, ``SOUNDWATCH_TIME`` (ISO 8601, UTC) and, from the alert rule,
    ``SOUNDWATCH_WINDOW_ANOMALIES`` and ``SOUNDWATCH_WINDOW`` (k of n).
    """
    def text(value: Any) -> str:
        return "" if value is None else repr(value) if isinstance(value, float) else str(value)

    return {
        "SOUNDWATCH_PATH": text(record.get("path") or record.get("name")),
        "SOUNDWATCH_MACHINE": text(record.get("machine")),
        "SOUNDWATCH_SCORE": text(record.get("score")),
        "SOUNDWATCH_PERCENTILE": text(record.get("percentile")),
        "SOUNDWATCH_THRESHOLD": text(record.get("threshold")),
        "SOUNDWATCH_CLIP_ID": text(record.get("id")),
        "SOUNDWATCH_TIME": text(record.get("time")),
        "SOUNDWATCH_WINDOW_ANOMALIES": text((record.get("alert") or {}).get("anomalies")),
        "SOUNDWATCH_WINDOW": text((record.get("alert") or {}).get("window")),
    }


class Alerter:
    """Runs the alerts of anomalous clips in one background thread, in order.

    A slow or failing command or webhook never holds up scoring: failures are logged as
    warnings and the next alert goes on.

    Args:
        command: Shell command run for each anomaly, with :func:`alert_env` in its
            environment.
        webhook: ``http(s)://`` URL that gets a JSON POST of the clip's record.
        timeout: Seconds one command or POST may take.
        rule: When anomalous clips raise an alert (default: each one does).

    Raises:
        ConfigError: A webhook URL that is not http or https.
    """

    def __init__(self, command: str | None = None, webhook: str | None = None,
                 timeout: float = 30.0, rule: AlertRule | None = None) -> None:
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            raise ConfigError("--webhook", f"expected an http:// or https:// URL, got {webhook!r}")
        self.command = command or None
        self.webhook = webhook or None
        self.timeout = float(timeout)
        self.rule = rule or AlertRule()
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether any alert is configured."""
        return bool(self.command or self.webhook)

    def submit(self, record: dict[str, Any]) -> None:
        """Pass one recorded clip through the rule; queue an alert when the rule fires.

        Give every new clip of every machine (normal ones too): the rule's window needs them.
        """
        if not self.enabled:
            return
        fired = self.rule.observe(record)
        if fired is None:
            return
        record = {**record, "alert": fired}
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="soundwatch-alerts",
                                            daemon=True)
            self._thread.start()
        self._queue.put(record)

    def close(self, wait: float = 30.0) -> None:
        """Finish the queued alerts (waiting at most ``wait`` seconds) and stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(wait)
            self._thread = None

    def _loop(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            ok = True
            if self.command:
                ok = self._run_command(record) and ok
            if self.webhook:
                ok = self._post(record) and ok
            if ok:
                self.sent += 1
            else:
                self.failed += 1

    def _run_command(self, record: dict[str, Any]) -> bool:
        try:
            done = subprocess.run(self.command, shell=True, env={**os.environ, **alert_env(record)},
                                  timeout=self.timeout, capture_output=True, text=True,
                                  check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("--on-anomaly command failed: %s", exc)
            return False
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            log.warning("--on-anomaly command exited %d: %s", done.returncode, last)
            return False
        return True

    def _post(self, record: dict[str, Any]) -> bool:
        body = json.dumps({"event": "anomaly", **record}).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - a URL the user gave
            str(self.webhook), data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "soundwatch"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("webhook %s failed: %s", self.webhook, exc)
            return False
        return True
