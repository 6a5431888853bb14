"""``soundwatch watch``: score the audio files appearing in a folder, once each, when complete."""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundwatch.errors import ConfigError, SoundwatchError
from soundwatch.monitor.alerts import Alerter
from soundwatch.monitor.history import History
from soundwatch.monitor.scoring import AUDIO_SUFFIXES, MachineScorer, file_key, guess_machine
from soundwatch.monitor.state import verdict_columns

__all__ = ["FolderWatcher", "UNKNOWN_MACHINE", "is_candidate"]

log = logging.getLogger(__name__)

UNKNOWN_MACHINE = "(unknown)"
"""The machine recorded for a file whose machine type cannot be told from its path."""


def is_candidate(path: str | os.PathLike[str]) -> bool:
    """Whether the watcher considers a file: an audio suffix, not hidden, not a temporary."""
    path = Path(path)
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    stable_since: float


class FolderWatcher:
    """Watch a folder and score each audio file once, when it is complete.

    New files are noticed through watchdog's file-system events and a periodic rescan
    (a safety net for file systems without events). A file counts as complete once its
    size and modification time have not changed for ``settle`` seconds. Each file is keyed
    by ``(path, size, mtime_ns, sha256)`` in the history: a file already recorded is
    skipped, so a restarted watcher resumes without scoring anything twice; a file
    rewritten with other content is scored again. A bad file is recorded as an error with
    its reason and the watcher goes on.

    Args:
        scorer: The loaded runs.
        history: Where each clip is recorded.
        folder: The folder to watch (recursively).
        machine: Machine type of every file (default: told from each file's path).
        alerter: Alerts for anomalous clips.
        settle: Seconds a file must stay unchanged before it is scored.
        poll: Seconds between checks of the pending files.
        rescan: Seconds between full rescans of the folder (0: only at start).
        on_record: Called with each new history row (the CLI prints it).

    Raises:
        ConfigError: The folder is missing, or ``machine`` is not in the runs.
    """

    def __init__(self, scorer: MachineScorer, history: History, folder: str | os.PathLike[str],
                 machine: str | None = None, alerter: Alerter | None = None,
                 settle: float = 1.0, poll: float = 0.25, rescan: float = 30.0,
                 on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise ConfigError(folder, "no such folder to watch")
        if machine is not None and machine not in scorer.machines:
            scorer.get(machine)  # raises the one-line unknown-machine error
        if settle < 0 or poll <= 0 or rescan < 0:
            raise ConfigError("--settle/--poll", "settle and rescan must be >= 0, poll > 0")
        self.scorer = scorer
        self.history = history
        self.machine = machine
        self.alerter = alerter or Alerter()
        self.settle = float(settle)
        self.poll = float(poll)
        self.rescan = float(rescan)
        self.on_record = on_record
        self.pending: dict[Path, _Pending] = {}
        self.done: set[tuple[Path, int, int]] = set()
        self.scored = 0
        self.errors = 0
        self.skipped = 0
        self.write_failures = 0
        self.retry = 5.0  # seconds before a file whose record failed is tried again
        self._events: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._stop = threading.Event()

    # ------------------------------------------------------------- discovery
    def notice(self, path: str | os.PathLike[str]) -> None:
        """Consider a path (thread-safe: watchdog's thread calls this)."""
        if is_candidate(path):
            self._events.put(Path(path))

    def scan(self) -> int:
        """Notice every audio file under the folder; return how many were found."""
        found: set[Path] = set()
        for dirpath, dirnames, filenames in os.walk(self.folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if is_candidate(name):
                    path = Path(os.path.abspath(Path(dirpath) / name))
                    self._events.put(path)
                    found.add(path)
        # forget finished files that are gone, so a watcher running for months stays small
        self.done = {key for key in self.done if key[0] in found}
        return len(found)

    def _drain_events(self, now: float) -> None:
        while True:
            try:
                path = self._events.get_nowait()
            except queue.Empty:
                return
            path = Path(os.path.abspath(path))
            if path not in self.pending:
                self.pending[path] = _Pending(-1, -1, now)

    # ------------------------------------------------------------ processing
    def step(self, now: float | None = None) -> int:
        """Check the pending files once; score those that are complete.

        Returns:
            How many files were recorded (scored or errors) in this step.
        """
        now = time.monotonic() if now is None else now
        self._drain_events(now)
        recorded = 0
        for path in sorted(self.pending):
            if self._stop.is_set():  # a backlog of thousands of files must not delay a stop
                break
            state = self.pending[path]
            try:
                st = os.stat(path)
            except FileNotFoundError:
                del self.pending[path]  # deleted or renamed away before it completed
                continue
            except OSError as exc:
                self._record_error(path, None, UNKNOWN_MACHINE, exc.strerror or str(exc))
                del self.pending[path]
                recorded += 1
                continue
            if (st.st_size, st.st_mtime_ns) != (state.size, state.mtime_ns):
                self.pending[path] = _Pending(st.st_size, st.st_mtime_ns, now)
                if self.settle > 0:
                    continue
            elif now - state.stable_since < self.settle:
                continue
            if (path, st.st_size, st.st_mtime_ns) in self.done:
                del self.pending[path]
                continue
            try:
                outcome = self.process(path)
            except sqlite3.Error as exc:  # disk full, read-only, locked too long: retry later
                from soundwatch.monitor.health import sqlite_reason

                self.write_failures += 1
                log.warning("%s: not recorded, retried later: %s", path, sqlite_reason(exc))
                self.pending[path] = _Pending(st.st_size, st.st_mtime_ns, now + self.retry)
                break
            if outcome == "changed":
                self.pending[path] = _Pending(-1, -1, now)
                continue
            del self.pending[path]
            if outcome == "recorded":
                recorded += 1
        return recorded

    def process(self, path: Path) -> str:
        """Score and record one complete file unless the history already holds it.

        Returns:
            ``"recorded"``, ``"seen"`` (already in the history) or ``"changed"`` (the file
            changed while it was read; it is checked again later).
        """
        try:
            size, mtime_ns, sha = file_key(path)
        except SoundwatchError as exc:
            key = _unreadable_key(path)  # recorded once, not again at every rescan
            if key is not None and self.history.find_file(**key) is not None:
                self.done.add((path, key["size"], key["mtime_ns"]))
                self.skipped += 1
                return "seen"
            self._record_error(path, key, UNKNOWN_MACHINE, exc.reason)
            return "recorded"
        key = {"path": str(path), "size": size, "mtime_ns": mtime_ns, "sha256": sha}
        if self.history.find_file(**key) is not None:
            self.done.add((path, size, mtime_ns))
            self.skipped += 1
            return "seen"
        try:
            machine = self.machine or guess_machine(path, self.scorer.machines, self.folder)
        except SoundwatchError as exc:
            self._record_error(path, key, UNKNOWN_MACHINE, exc.reason)
            return "recorded"
        try:
            verdict = self.scorer.score_file(machine, path)
        except SoundwatchError as exc:
            if _changed(path, size, mtime_ns):
                return "changed"
            self._record_error(path, key, machine, exc.reason)
            return "recorded"
        if _changed(path, size, mtime_ns):
            return "changed"
        status, columns = verdict_columns(verdict)
        record = self.history.record(machine, "watch", status, name=path.name, audio=str(path),
                                     **key, **columns)
        self.done.add((path, size, mtime_ns))
        if not record["duplicate"]:
            self.scored += 1
            self._emit(record)
            self.alerter.submit(record)
        return "recorded"

    def _record_error(self, path: Path, key: dict[str, Any] | None, machine: str,
                      reason: str) -> None:
        key = key or {"path": str(path)}
        record = self.history.record(machine, "watch", "error", name=path.name, error=reason,
                                     **key)
        if key.get("size") is not None:
            self.done.add((path, int(key["size"]), int(key["mtime_ns"])))
        if not record["duplicate"]:
            self.errors += 1
            self._emit(record)

    def _emit(self, record: dict[str, Any]) -> None:
        if self.on_record is not None:
            self.on_record(record)

    # ----------------------------------------------------------------- loops
    def run(self, stop: threading.Event | None = None, once: bool = False) -> None:
        """Watch until ``stop`` is set (or, with ``once``, until the files present are done).

        Args:
            stop: Set it (from a signal handler or another thread) to stop.
            once: Score the files present at start, then return (no watching).
        """
        stop = stop or threading.Event()
        self._stop = stop
        self.scan()
        if once:
            while not stop.is_set():
                self.step()
                if not self.pending and self._events.empty():
                    return
                stop.wait(self.poll)
            return
        observer = _start_observer(self.folder, self.notice)
        last_scan = time.monotonic()
        try:
            while not stop.is_set():
                self.step()
                if self.rescan and time.monotonic() - last_scan >= self.rescan:
                    self.scan()
                    last_scan = time.monotonic()
                stop.wait(self.poll)
        finally:
            if observer is not None:
                observer.stop()
                observer.join(5)


def _unreadable_key(path: Path) -> dict[str, Any] | None:
    """The history key of a file that cannot be hashed (its content digest left empty)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": ""}


def _changed(path: Path, size: int, mtime_ns: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True
    return (st.st_size, st.st_mtime_ns) != (size, mtime_ns)


def _start_observer(folder: Path, notice: Callable[[str], None]) -> Any:
    """Start a watchdog observer that calls ``notice`` for every file event; None on failure."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError as exc:
        from soundwatch.monitor import EXTRA_HINT

        raise ConfigError("watchdog", f"not installed; {EXTRA_HINT}") from exc

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            if event.is_directory:
                return
            for attr in ("dest_path", "src_path"):
                value = getattr(event, attr, "")
                if value:
                    notice(os.fsdecode(value))

    observer = Observer()
    observer.schedule(_Handler(), str(folder), recursive=True)
    try:
        observer.start()
    except OSError as exc:  # inotify limits: the periodic rescan still finds the files
        log.warning("%s: file-system events unavailable (%s); rescanning instead", folder, exc)
        return None
    return observer
