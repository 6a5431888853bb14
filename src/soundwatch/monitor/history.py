"""The monitoring history: one SQLite (WAL) row per scored clip, written by one writer at a time."""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from soundwatch.errors import ConfigError

__all__ = ["History", "default_db", "iso_time", "parse_since"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL    NOT NULL,
    machine     TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    name        TEXT,
    path        TEXT,
    size        INTEGER,
    mtime_ns    INTEGER,
    sha256      TEXT,
    request_id  TEXT,
    status      TEXT    NOT NULL CHECK (status IN ('ok', 'sensor', 'error')),
    score       REAL,
    threshold   REAL,
    decision    INTEGER,
    percentile  REAL,
    seconds     REAL,
    error       TEXT,
    audio       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS clips_file_key
    ON clips (path, size, mtime_ns, sha256) WHERE source = 'watch';
CREATE UNIQUE INDEX IF NOT EXISTS clips_request_id
    ON clips (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_machine_ts ON clips (machine, ts);
CREATE INDEX IF NOT EXISTS clips_decision_ts ON clips (decision, ts);
"""

# Version 2 (with the ``sensor`` status above): per-machine counters kept by triggers, so
# the page's summary and the metrics read 200 rows instead of scanning millions; a partial
# index for the kept-audio pruning, and one on the time alone for --keep-days retention.
_STATS_SCHEMA = """
CREATE TABLE IF NOT EXISTS machine_stats (
    machine     TEXT PRIMARY KEY,
    clips       INTEGER NOT NULL DEFAULT 0,
    anomalies   INTEGER NOT NULL DEFAULT 0,
    errors      INTEGER NOT NULL DEFAULT 0,
    sensor      INTEGER NOT NULL DEFAULT 0,
    last_id     INTEGER
);
CREATE INDEX IF NOT EXISTS clips_kept_audio ON clips (id) WHERE audio IS NOT NULL;
CREATE INDEX IF NOT EXISTS clips_ts ON clips (ts);
CREATE TRIGGER IF NOT EXISTS clips_stats_insert AFTER INSERT ON clips BEGIN
    INSERT INTO machine_stats (machine) VALUES (NEW.machine) ON CONFLICT (machine) DO NOTHING;
    UPDATE machine_stats SET clips = clips + 1,
        anomalies = anomalies + (NEW.decision IS 1 AND NEW.status = 'ok'),
        errors = errors + (NEW.status = 'error'), sensor = sensor + (NEW.status = 'sensor'),
        last_id = MAX(COALESCE(last_id, 0), NEW.id)
    WHERE machine = NEW.machine;
END;
CREATE TRIGGER IF NOT EXISTS clips_stats_delete AFTER DELETE ON clips BEGIN
    UPDATE machine_stats SET clips = clips - 1,
        anomalies = anomalies - (OLD.decision IS 1 AND OLD.status = 'ok'),
        errors = errors - (OLD.status = 'error'), sensor = sensor - (OLD.status = 'sensor'),
        last_id = CASE WHEN last_id = OLD.id THEN
            (SELECT id FROM clips WHERE machine = OLD.machine ORDER BY ts DESC, id DESC LIMIT 1)
            ELSE last_id END
    WHERE machine = OLD.machine;
    DELETE FROM machine_stats WHERE machine = OLD.machine AND clips <= 0;
END;
"""

_STATS_REBUILD = """
DELETE FROM machine_stats;
INSERT INTO machine_stats (machine, clips, anomalies, errors, sensor, last_id)
    SELECT machine, COUNT(*), SUM(decision IS 1 AND status = 'ok'), SUM(status = 'error'),
        SUM(status = 'sensor'), MAX(id)
    FROM clips GROUP BY machine;
"""

_COLUMNS = ("ts", "machine", "source", "name", "path", "size", "mtime_ns", "sha256",
            "request_id", "status", "score", "threshold", "decision", "percentile", "seconds",
            "error", "audio")


def default_db(run: str | os.PathLike[str]) -> Path:
    """The default history database of a run folder: ``<run>/monitor/history.sqlite``."""
    return Path(run) / "monitor" / "history.sqlite"


def iso_time(ts: float) -> str:
    """A unix time as an ISO 8601 UTC string with milliseconds (``2026-01-02T03:04:05.678Z``)."""
    stamp = _dt.datetime.fromtimestamp(float(ts), _dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_since(value: str | float | None, where: str = "since") -> float | None:
    """Read a ``since`` bound: unix seconds, or an ISO 8601 time (UTC when no zone is given).

    Args:
        value: The text (or number); ``None`` or ``""`` for no bound.
        where: What to name in the error.

    Returns:
        Unix seconds, or ``None``.

    Raises:
        ConfigError: Neither a number nor an ISO 8601 time.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(where, f"not a finite time: {text!r}")
        return number
    try:
        stamp = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            where, f"expected unix seconds or an ISO 8601 time, got {text!r}"
        ) from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.UTC)
    return stamp.timestamp()


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the ``sensor`` status (SQLite cannot alter a CHECK: copy the table)."""
    conn.executescript(
        "BEGIN IMMEDIATE; ALTER TABLE clips RENAME TO clips_v1; "
        "DROP INDEX IF EXISTS clips_file_key; DROP INDEX IF EXISTS clips_request_id; "
        "DROP INDEX IF EXISTS clips_machine_ts; DROP INDEX IF EXISTS clips_decision_ts; "
        + _SCHEMA + " INSERT INTO clips SELECT * FROM clips_v1; DROP TABLE clips_v1; COMMIT;")
    log.info("history database upgraded to schema 2 (sensor status)")


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = {key: row[key] for key in row.keys() if key != "audio"}  # noqa: SIM118
    out["status_reason"] = row["error"] if row["status"] != "ok" else None
    out["time"] = iso_time(row["ts"])
    out["has_audio"] = bool(row["audio"])
    return out


class History:
    """The SQLite history of scored clips.

    The database runs in WAL mode: readers never block the writer and see only committed
    rows. Writes go through one connection behind a lock (one writer per process; other
    processes, such as a ``watch`` beside a ``serve`` on the same file, wait up to the busy
    timeout). Each clip is one ``INSERT`` in its own transaction, so a killed process leaves
    a clip either fully recorded or absent.

    A clip seen by the folder watcher is keyed by ``(path, size, mtime_ns, sha256)`` and an
    upload by its optional ``request_id``: recording the same key twice returns the first
    row instead of adding one.

    Args:
        path: The database file (created with its folder when missing).
        busy_timeout: Seconds to wait for another process's write lock.

    Raises:
        ConfigError: The file cannot be opened as a database.
    """

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            with self._lock:
                self._writer.execute("PRAGMA journal_mode=WAL")
                version = self._writer.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise ConfigError(self.path, f"history schema {version} is newer than this "
                                      f"soundwatch ({SCHEMA_VERSION}); upgrade soundwatch")
                if version == 1:
                    _migrate_v1(self._writer)
                self._writer.executescript(_SCHEMA)
                self._writer.executescript(_STATS_SCHEMA)
                if version < 2:  # a new database, or one from before the counters
                    self._writer.executescript(f"BEGIN IMMEDIATE; {_STATS_REBUILD} COMMIT;")
                self._writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._writer.commit()
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(self.path, f"cannot open the history database ({exc})") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False,
                               isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        # NORMAL is durable against a killed process in WAL mode (only a power cut can
        # lose the last transactions), and avoids an fsync per clip.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise ConfigError(self.path, "history is closed")
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise ConfigError(self.path, "history is closed")
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    def close(self) -> None:
        """Close every connection (further use raises)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                try:
                    conn.close()
                except sqlite3.Error:  # pragma: no cover - closing from another thread
                    pass
            self._readers.clear()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def record(self, machine: str, source: str, status: str, **fields: Any) -> dict[str, Any]:
        """Record one clip in one transaction.

        Args:
            machine: Machine type.
            source: ``"watch"`` (a file of a watched folder) or ``"upload"`` (the service).
            status: ``"ok"`` (scored), ``"sensor"`` (scored, but the recording shows a
                sensor fault: never a machine anomaly) or ``"error"`` (rejected); ``error``
                holds the reason of the last two.
            **fields: Other columns: ``name``, ``path``, ``size``, ``mtime_ns``, ``sha256``,
                ``request_id``, ``score``, ``threshold``, ``decision``, ``percentile``,
                ``seconds``, ``error``, ``audio`` (a kept copy of the clip), ``ts``.

        Returns:
            The row as a dict, with ``duplicate`` true when the key was already recorded
            (then the row is the first one and nothing is written).
        """
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise TypeError(f"unknown history fields: {sorted(unknown)}")
        values = {"ts": time.time(), **fields, "machine": machine, "source": source,
                  "status": status}
        names = [c for c in _COLUMNS if c in values]
        sql = (f"INSERT INTO clips ({', '.join(names)}) "
               f"VALUES ({', '.join('?' for _ in names)})")
        try:
            with self._write() as conn:
                cursor = conn.execute(sql, [values[c] for c in names])
                row_id = int(cursor.lastrowid or 0)
                row = conn.execute("SELECT * FROM clips WHERE id = ?", (row_id,)).fetchone()
        except sqlite3.IntegrityError:
            existing = self._find_existing(values)
            if existing is None:
                raise
            return {**existing, "duplicate": True}
        return {**_row(row), "duplicate": False}

    def _find_existing(self, values: dict[str, Any]) -> dict[str, Any] | None:
        if values.get("request_id") is not None:
            found = self.get_by_request_id(str(values["request_id"]))
            if found is not None:
                return found
        if values.get("source") == "watch":
            return self.find_file(values.get("path"), values.get("size"),
                                  values.get("mtime_ns"), values.get("sha256"))
        return None

    def prune_audio(self, keep: int) -> list[str]:
        """Forget the kept audio copies of all but the newest ``keep`` clips that have one.

        Returns:
            The paths of the copies to delete (the caller deletes the files).
        """
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, audio FROM clips INDEXED BY clips_kept_audio WHERE audio IS NOT "
                "NULL AND source = 'upload' ORDER BY id DESC LIMIT -1 OFFSET ?",
                (max(0, int(keep)),)).fetchall()
            if rows:
                conn.executemany("UPDATE clips SET audio = NULL WHERE id = ?",
                                 [(r["id"],) for r in rows])
        return [r["audio"] for r in rows]

    # ------------------------------------------------------------------- reads
    def kept_audio(self) -> set[str]:
        """The kept audio copies of uploads that rows still point to."""
        rows = self._reader().execute(
            "SELECT audio FROM clips INDEXED BY clips_kept_audio WHERE audio IS NOT NULL "
            "AND source = 'upload'").fetchall()
        return {r[0] for r in rows}

    def get(self, clip_id: int) -> dict[str, Any] | None:
        """One clip by id, or ``None``."""
        row = self._reader().execute("SELECT * FROM clips WHERE id = ?", (int(clip_id),))
        found = row.fetchone()
        return _row(found) if found else None

    def audio_path(self, clip_id: int) -> str | None:
        """The audio file of a clip (the watched file or the kept upload), or ``None``."""
        found = self._reader().execute("SELECT audio FROM clips WHERE id = ?",
                                       (int(clip_id),)).fetchone()
        return found["audio"] if found else None

    def get_by_request_id(self, request_id: str) -> dict[str, Any] | None:
        """The clip an upload with this request id recorded, or ``None``."""
        found = self._reader().execute("SELECT * FROM clips WHERE request_id = ?",
                                       (request_id,)).fetchone()
        return _row(found) if found else None

    def find_file(self, path: Any, size: Any, mtime_ns: Any, sha256: Any) -> dict[str, Any] | None:
        """The watcher's row for a file with this key, or ``None`` (not seen yet)."""
        found = self._reader().execute(
            "SELECT * FROM clips WHERE source = 'watch' AND path = ? AND size = ? "
            "AND mtime_ns = ? AND sha256 = ?", (path, size, mtime_ns, sha256)).fetchone()
        return _row(found) if found else None

    def history(self, machine: str, since: float | None = None,
                limit: int = 500, before: float | None = None) -> list[dict[str, Any]]:
        """A machine's clips after ``since`` (unix seconds): the newest ``limit``, oldest first.

        ``before`` pages back: the clips strictly older than it (pass the first ``ts`` of
        the previous page).
        """
        rows = self._reader().execute(
            "SELECT * FROM clips WHERE machine = ? AND ts > ? AND ts < ? "
            "ORDER BY ts DESC, id DESC LIMIT ?",
            (machine, -1.0 if since is None else since,
             float("inf") if before is None else before, int(limit))).fetchall()
        return [_row(r) for r in reversed(rows)]

    def events(self, since: float | None = None, limit: int = 100,
               machine: str | None = None) -> list[dict[str, Any]]:
        """Machine anomalies (decision 1, status ok) after ``since``, newest first."""
        sql = "SELECT * FROM clips WHERE decision = 1 AND status = 'ok' AND ts > ?"
        args: list[Any] = [-1.0 if since is None else since]
        if machine is not None:
            sql += " AND machine = ?"
            args.append(machine)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        args.append(int(limit))
        return [_row(r) for r in self._reader().execute(sql, args).fetchall()]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per machine: ``clips``, ``anomalies``, ``errors``, ``sensor`` and the ``last`` clip."""
        conn = self._reader()
        out: dict[str, dict[str, Any]] = {}
        for r in conn.execute("SELECT machine, clips, anomalies, errors, sensor, last_id "
                              "FROM machine_stats WHERE clips > 0"):
            last = conn.execute("SELECT * FROM clips WHERE id = ?", (r["last_id"],)).fetchone()
            if last is None:
                continue
            out[r["machine"]] = {"clips": int(r["clips"]), "anomalies": int(r["anomalies"] or 0),
                                 "errors": int(r["errors"] or 0), "sensor": int(r["sensor"] or 0),
                                 "last": _row(last)}
        return out

    def count(self, source: str | None = None, status: str | None = None) -> int:
        """Number of recorded clips, optionally of one source and status."""
        if source is None and status is None:
            total = self._reader().execute("SELECT SUM(clips) FROM machine_stats").fetchone()
            return int(total[0] or 0)
        sql, args = "SELECT COUNT(*) FROM clips WHERE 1 = 1", []
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return int(self._reader().execute(sql, args).fetchone()[0])

    def check(self) -> None:
        """Run a trivial query (for health checks).

        Raises:
            sqlite3.Error: The database cannot be read.
        """
        self._reader().execute("SELECT 1 FROM clips LIMIT 1").fetchall()
