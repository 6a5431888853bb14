"""Backup, restore and retention of the monitoring history (SQLite's online backup API)."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from soundwatch.atomic import atomic_path
from soundwatch.errors import ConfigError
from soundwatch.monitor.health import integrity_problem
from soundwatch.monitor.history import History

__all__ = ["backup", "prune_older", "restore"]

log = logging.getLogger(__name__)

_PAGES_PER_STEP = 1024
"""Pages copied per backup step: writers get the database between steps."""


def _open(path: Path, what: str, readonly: bool) -> sqlite3.Connection:
    if readonly and not path.is_file():
        raise ConfigError(path, f"no such {what}")
    try:
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        conn = sqlite3.connect(uri, uri=True, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn
    except sqlite3.Error as exc:
        raise ConfigError(path, f"cannot open the {what} ({exc})") from exc


def backup(db: str | os.PathLike[str], out: str | os.PathLike[str]) -> int:
    """Copy a live history database to ``out`` (consistent, while serve and watch write).

    The copy goes to a temporary file renamed onto ``out`` once complete and checked
    (``PRAGMA integrity_check``), so ``out`` is never a half-written database.

    Returns:
        The number of clips in the backup.

    Raises:
        ConfigError: The database is missing or unreadable, or the copy is not sound.
    """
    db, out = Path(db), Path(out)
    if out.exists() and out.is_dir():
        out = out / f"history-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.sqlite"
    source = _open(db, "history database", readonly=True)
    try:
        with atomic_path(out) as tmp:
            target = sqlite3.connect(tmp)
            try:
                source.backup(target, pages=_PAGES_PER_STEP, sleep=0.005)
                target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                count = int(target.execute("SELECT COUNT(*) FROM clips").fetchone()[0])
            except sqlite3.Error as exc:
                raise ConfigError(db, f"backup failed ({exc})") from exc
            finally:
                target.close()
            problem = integrity_problem(tmp, quick=False)
            if problem is not None:
                raise ConfigError(db, f"the backup is not sound ({problem}); the database "
                                  "may be damaged (see soundwatch history check)")
    finally:
        source.close()
    log.info("backed up %d clip(s) of %s to %s", count, db, out)
    return count


def restore(source: str | os.PathLike[str], db: str | os.PathLike[str]) -> int:
    """Replace the history database's content by a backup's (works while it is in use).

    The backup is checked first; its pages are then copied into the live database through
    the backup API, which locks it for the copy, so a running serve or watch sees either
    the old content or the restored one, never a mix.

    Returns:
        The number of clips restored.

    Raises:
        ConfigError: The backup is missing, not a history database, or damaged.
    """
    source, db = Path(source), Path(db)
    problem = integrity_problem(source, quick=False)
    if problem is not None:
        raise ConfigError(source, f"not a sound history backup ({problem})")
    History(db).close()  # make the database (and its folder) when missing
    src = _open(source, "backup", readonly=True)
    dst = _open(db, "history database", readonly=False)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
        count = int(dst.execute("SELECT COUNT(*) FROM clips").fetchone()[0])
    except sqlite3.Error as exc:
        raise ConfigError(db, f"restore failed ({exc})") from exc
    finally:
        src.close()
        dst.close()
    log.info("restored %d clip(s) from %s into %s", count, source, db)
    return count


def prune_older(history: History, keep_days: float, batch: int = 5000) -> list[str]:
    """Delete the clips older than ``keep_days`` (``--keep-days``), in small transactions.

    Returns:
        The kept upload copies those rows pointed to (the caller deletes the files).
    """
    if keep_days <= 0:
        raise ConfigError("--keep-days", f"must be positive, got {keep_days}")
    cutoff = time.time() - keep_days * 86400.0
    audio: list[str] = []
    while True:
        # found by a reader (index on ts), deleted in a short write transaction
        rows = history._reader().execute(
            "SELECT id, audio, source FROM clips INDEXED BY clips_ts WHERE ts < ? "
            "ORDER BY ts LIMIT ?", (cutoff, batch)).fetchall()
        if not rows:
            break
        with history._write() as conn:
            conn.executemany("DELETE FROM clips WHERE id = ?", [(r[0],) for r in rows])
        audio += [r[1] for r in rows if r[1] and r[2] == "upload"]
        if len(rows) < batch:
            break
    return audio
