"""Health of a running ``serve``: database writes, disk space, run folders, the clock.

``/healthz`` answers ``ok`` or ``degraded`` with the reasons (the page shows them), and
503 only when the history cannot be read at all. A failed write is answered 503 to the
client (the clip is not accepted, so a retry with the same ``X-Request-ID`` records it
once) and shows here until a write succeeds again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundwatch.monitor.history import History, iso_time

__all__ = ["Health", "integrity_problem", "open_history", "sqlite_reason"]

log = logging.getLogger(__name__)

LOW_DISK_BYTES = 64 * 1024 * 1024
"""Free space under which the database's disk counts as almost full (or 5 % of a small one)."""

CLOCK_JUMP_S = 30.0
"""A wall-clock step (against the monotonic clock) larger than this is reported."""

CLOCK_JUMP_SHOWN_S = 3600.0
"""How long a clock jump stays in the health report."""


def sqlite_reason(exc: BaseException) -> str:
    """A short reason for a database error: disk full, read-only, corrupt, locked..."""
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"the server's folder is read-only ({exc.strerror})"
    if "full" in text:
        return "the disk is full (database or disk is full)"
    if "readonly" in text or "read-only" in text:
        return "the database is read-only (attempt to write a readonly database)"
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return f"the database is corrupt ({exc})"
    if "locked" in text or "busy" in text:
        return "the database stayed locked by another process (busy timeout)"
    if "disk i/o" in text:
        return f"disk I/O error ({exc})"
    return str(exc) or type(exc).__name__


@dataclass
class _RunStamp:
    root: Path
    files: dict[Path, tuple[int, ...] | None] = field(default_factory=dict)


def _stamp(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)  # ctime: not copyable


class Health:
    """What ``/healthz`` reports: checked on each call, cheap (a few ``stat`` calls).

    Args:
        history: The history database.
        runs: The loaded run folders and their machine types (to notice them deleted or
            replaced while serving).
        clock: Wall clock (tests pass a fake one).
        monotonic: Monotonic clock.
    """

    def __init__(self, history: History, runs: Iterable[tuple[Path, Iterable[str]]] = (), *,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 startup: Iterable[str] = ()) -> None:
        self.history = history
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self.write_error: tuple[float, str] | None = None
        self.write_failures = 0
        self.startup = list(startup)
        self._offset = clock() - monotonic()
        self.clock_jump: tuple[float, float] | None = None  # (seconds, when: monotonic)
        self.runs: list[_RunStamp] = []
        for root, machines in runs:
            root = Path(root)
            files = [root / "run.json"] + [root / "detector" / m / "config.json"
                                           for m in machines]
            self.runs.append(_RunStamp(root, {f: _stamp(f) for f in files}))

    # ------------------------------------------------------------- writes
    def write_failed(self, exc: BaseException) -> str:
        """Note a failed history write; return its short reason."""
        reason = sqlite_reason(exc)
        with self._lock:
            self.write_error = (self.clock(), reason)
            self.write_failures += 1
        log.warning("history write failed: %s", reason)
        return reason

    def write_ok(self) -> None:
        """Note a successful history write (clears a write failure)."""
        if self.write_error is not None:
            with self._lock:
                if self.write_error is not None:
                    log.info("history writes work again")
                self.write_error = None

    # ------------------------------------------------------------- checks
    def _check_clock(self) -> None:
        offset = self.clock() - self.monotonic()
        step = offset - self._offset
        if abs(step) > CLOCK_JUMP_S:
            self.clock_jump = (step, self.monotonic())
            log.warning("the system clock jumped by %+.0f s", step)
        self._offset = offset

    def reasons(self) -> list[str]:
        """Why the service is degraded (empty: healthy)."""
        out = list(self.startup)
        with self._lock:
            error = self.write_error
        if error is not None:
            out.append(f"history writes fail since {iso_time(error[0])}: {error[1]}; "
                       "clips are refused (503) until a write succeeds")
        with contextlib.suppress(OSError):
            usage = shutil.disk_usage(self.history.path.parent)
            free = usage.free
            if free < min(LOW_DISK_BYTES, usage.total * 0.05):
                out.append(f"the history's disk is almost full ({free // 1024 // 1024} MiB "
                           f"free at {self.history.path.parent})")
        if not self.history.path.exists():
            out.append(f"the history database {self.history.path} was deleted while serving")
        for run in self.runs:
            for path, stamp in run.files.items():
                now = _stamp(path)
                if now == stamp:
                    continue
                what = "deleted" if now is None else "replaced"
                out.append(f"run folder {run.root}: {path.relative_to(run.root)} was {what} "
                           "since start; the detectors loaded at start still score (restart "
                           "soundwatch serve to load the new ones)")
                break
        self._check_clock()
        if self.clock_jump is not None:
            step, when = self.clock_jump
            if self.monotonic() - when <= CLOCK_JUMP_SHOWN_S:
                out.append(f"the system clock jumped by {step:+.0f} s; history times around "
                           "the jump are out of order")
        return out

    def report(self) -> dict[str, Any]:
        """``status`` (``ok`` / ``degraded``), ``reasons`` and counters.

        Raises:
            sqlite3.Error: The history cannot be read at all.
        """
        self.history.check()
        reasons = self.reasons()
        return {"status": "degraded" if reasons else "ok", "reasons": reasons,
                "write_failures": self.write_failures}


def _salvage(broken: Path, fresh: History) -> int:
    """Copy every readable row of a corrupt database into ``fresh``; return how many."""
    from soundwatch.monitor.history import _COLUMNS

    saved = 0
    try:
        conn = sqlite3.connect(f"file:{broken}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        names = ", ".join(("id", *_COLUMNS))
        last = -1
        while True:  # by id ranges, so one bad page loses only its rows
            try:
                rows = conn.execute(f"SELECT {names} FROM clips WHERE id > ? ORDER BY id "
                                    "LIMIT 1000", (last,)).fetchall()
            except sqlite3.Error:
                try:  # skip past the unreadable stretch
                    nxt = conn.execute("SELECT MIN(id) FROM clips WHERE id > ?",
                                       (last + 1000,)).fetchone()[0]
                except sqlite3.Error:
                    break
                if nxt is None:
                    break
                last = int(nxt) - 1
                continue
            if not rows:
                break
            with fresh._write() as out:
                out.executemany(
                    f"INSERT OR IGNORE INTO clips ({names}) VALUES "
                    f"({', '.join('?' for _ in range(len(_COLUMNS) + 1))})", rows)
            saved += len(rows)
            last = int(rows[-1][0])
    finally:
        conn.close()
    return saved


_DAMAGE_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def integrity_problem(path: str | os.PathLike[str], quick: bool = True) -> str | None:
    """``PRAGMA quick_check`` (or ``integrity_check``) of a database; None when it is sound.

    Raises:
        ConfigError: The file cannot be opened or read for another reason than damage
            (a read-only folder without the WAL's shared-memory file, permissions...).
    """
    from soundwatch.errors import ConfigError

    path = Path(path)
    conn = None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        pragma = "quick_check" if quick else "integrity_check"
        rows = conn.execute(f"PRAGMA {pragma}").fetchall()
        conn.execute("SELECT COUNT(*) FROM clips").fetchone()
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", None) in _DAMAGE_CODES or (
                "no such table" in str(exc)):
            return str(exc)
        raise ConfigError(path, f"cannot read the history database ({exc})") from exc
    finally:
        if conn is not None:
            conn.close()
    found = [str(r[0]) for r in rows]
    return None if found == ["ok"] else "; ".join(found[:3])


def open_history(path: str | os.PathLike[str], busy_timeout: float = 30.0,
                 check: bool = True) -> tuple[History, list[str]]:
    """Open the history for a long-running command, recovering a corrupt database.

    With ``check``, the database is verified first (``PRAGMA quick_check``). A corrupt
    one is moved aside to ``<name>.corrupt-<time>`` (with its WAL), a fresh one is made and
    every readable row is copied into it; the service starts degraded, saying so.

    Returns:
        The history and the startup problems to report (empty when all is well).

    Raises:
        ConfigError: The database cannot be opened or made at all.
    """
    path = Path(path)
    notes: list[str] = []
    problem = integrity_problem(path) if check and path.is_file() else None
    if problem is not None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        history = History(path, busy_timeout=busy_timeout)
        saved = _salvage(aside, history)
        note = (f"the history database was corrupt at start ({problem}); {saved} row(s) "
                f"recovered into a fresh one, the damaged file kept as {aside.name}")
        log.warning(note)
        notes.append(note)
        return history, notes
    return History(path, busy_timeout=busy_timeout), notes
