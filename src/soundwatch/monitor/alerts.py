"""Alerts on anomalous clips: a shell command and/or an HTTP webhook, run off the scoring path."""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
import urllib.error
import urllib.request
from typing import Any

from soundwatch.errors import ConfigError

__all__ = ["Alerter", "alert_env"]

log = logging.getLogger(__name__)


def alert_env(record: dict[str, Any]) -> dict[str, str]:
    """The ``SOUNDWATCH_*`` variables an ``--on-anomaly`` command gets for a clip.

    ``SOUNDWATCH_PATH`` (the file, or the upload's name), ``SOUNDWATCH_MACHINE``,
    ``SOUNDWATCH_SCORE``, ``SOUNDWATCH_PERCENTILE``, ``SOUNDWATCH_THRESHOLD``,
    ``SOUNDWATCH_CLIP_ID`` and ``SOUNDWATCH_TIME`` (ISO 8601, UTC).
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

    Raises:
        ConfigError: A webhook URL that is not http or https.
    """

    def __init__(self, command: str | None = None, webhook: str | None = None,
                 timeout: float = 30.0) -> None:
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            raise ConfigError("--webhook", f"expected an http:// or https:// URL, got {webhook!r}")
        self.command = command or None
        self.webhook = webhook or None
        self.timeout = float(timeout)
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether any alert is configured."""
        return bool(self.command or self.webhook)

    def submit(self, record: dict[str, Any]) -> None:
        """Queue the alerts of one recorded clip (ignored unless its decision is 1)."""
        if not self.enabled or record.get("decision") != 1:
            return
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
