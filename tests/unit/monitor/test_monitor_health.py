"""Faults while serving: failed writes, run folders replaced, clock jumps, corrupt databases,
backup/restore and retention of the history."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import pytest
from monitor_helpers import write_clip

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from test_monitor_service import wav_bytes  # noqa: E402

from soundwatch.errors import ConfigError  # noqa: E402
from soundwatch.monitor.backup import backup, prune_older, restore  # noqa: E402
from soundwatch.monitor.health import Health, integrity_problem, open_history  # noqa: E402
from soundwatch.monitor.history import History  # noqa: E402
from soundwatch.monitor.service import Service, create_app  # noqa: E402


def post(client, rid=None, amp=0.1):
    headers = {"Content-Type": "audio/wav"}
    if rid:
        headers["X-Request-ID"] = rid
    return client.post("/v1/machines/fan/score", content=wav_bytes(amp), headers=headers)


def fill(history: History, n: int, ts0: float = 1.0e9, step: float = 1.0) -> None:
    with history._write() as conn:
        conn.executemany(
            "INSERT INTO clips (ts, machine, source, status, score, decision, request_id) "
            "VALUES (?, ?, 'upload', 'ok', ?, 0, ?)",
            [(ts0 + i * step, f"m{i % 3}", float(i), f"r{ts0}-{i}") for i in range(n)])


def test_a_failed_write_is_refused_503_reported_and_cleared(scorer, tmp_path, monkeypatch):
    history = History(tmp_path / "h.sqlite")
    service = Service(scorer, history)
    real = history.record
    with TestClient(create_app(service)) as client:
        assert client.get("/healthz").json()["status"] == "ok"

        def full(*args, **kwargs):
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(history, "record", full)
        r = post(client, "a")
        assert r.status_code == 503 and "disk is full" in r.json()["error"]
        health = client.get("/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded" and "disk is full" in body["reasons"][0]
        monkeypatch.setattr(history, "record", real)
        assert post(client, "a").status_code == 200  # the retry is recorded once
        assert post(client, "a").json()["duplicate"] is True
        assert client.get("/healthz").json()["status"] == "ok"
        assert history.count() == 1
        assert not list(service.clips_dir.iterdir()) or len(history.kept_audio()) == 1
    history.close()


def test_a_read_only_database_is_reported(scorer, tmp_path, monkeypatch):
    history = History(tmp_path / "h.sqlite")
    service = Service(scorer, history)

    def readonly(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(history, "record", readonly)
    with TestClient(create_app(service)) as client:
        assert post(client).status_code == 503
        assert "read-only" in client.get("/healthz").json()["reasons"][0]
    history.close()


def test_run_folder_deleted_or_replaced_while_serving(monitor_run, tmp_path):
    from soundwatch.monitor.scoring import MachineScorer

    run = tmp_path / "run"
    shutil.copytree(monitor_run, run)
    scorer = MachineScorer([run])
    history = History(tmp_path / "h.sqlite")
    service = Service(scorer, history)
    with TestClient(create_app(service)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        shutil.rmtree(run / "detector" / "pump")  # deleted
        body = client.get("/healthz").json()
        assert body["status"] == "degraded"
        assert any("detector/pump/config.json was deleted" in r for r in body["reasons"])
        assert post(client).status_code == 200  # the loaded detectors still score
        shutil.rmtree(run)
        shutil.copytree(monitor_run, run)  # replaced by another run
        reasons = client.get("/healthz").json()["reasons"]
        assert any("replaced" in r for r in reasons), reasons
    history.close()


def test_a_clock_jump_is_reported(tmp_path):
    history = History(tmp_path / "h.sqlite")
    wall, mono = [1000.0], [50.0]
    health = Health(history, clock=lambda: wall[0], monotonic=lambda: mono[0])
    assert health.report()["status"] == "ok"
    wall[0] += 10
    mono[0] += 10  # time passes normally
    assert health.report()["status"] == "ok"
    wall[0] -= 3600  # the clock is set back an hour
    report = health.report()
    assert report["status"] == "degraded" and "-3600 s" in report["reasons"][0]
    mono[0] += 4000
    wall[0] += 4000
    assert health.report()["status"] == "ok"  # shown for an hour
    history.close()


def _corrupt(path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start:start + 8192] = b"\xa5" * min(8192, len(data) - start)
    path.write_bytes(bytes(data))


def test_a_corrupt_database_is_recovered_at_start(tmp_path):
    db = tmp_path / "h.sqlite"
    with History(db) as history:
        fill(history, 20000)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _corrupt(db)
    assert integrity_problem(db) is not None
    history, notes = open_history(db)
    try:
        assert notes and "corrupt" in notes[0] and "recovered" in notes[0]
        kept = history.count()
        assert 0 < kept <= 20000, kept  # the readable rows
        assert integrity_problem(db, quick=False) is None
        assert list(tmp_path.glob("h.sqlite.corrupt-*"))
        fill(history, 1, ts0=2.0e9)  # writable again
        health = Health(history, startup=notes)
        assert health.report()["status"] == "degraded"
    finally:
        history.close()


def test_a_truncated_database_or_wal_is_recovered(tmp_path):
    db = tmp_path / "h.sqlite"
    with History(db) as history:
        fill(history, 5000)
    size = db.stat().st_size
    with open(db, "r+b") as handle:
        handle.truncate(size // 2)
    history, notes = open_history(db)
    assert notes and integrity_problem(db, quick=False) is None
    history.close()
    # a WAL cut in the middle of a frame: SQLite ignores the incomplete tail
    db2 = tmp_path / "w.sqlite"
    history = History(db2)
    fill(history, 1000)
    wal = db2.with_name(db2.name + "-wal")
    copy = tmp_path / "copy.sqlite"
    shutil.copy(db2, copy)
    shutil.copy(wal, copy.with_name(copy.name + "-wal"))
    history.close()
    cut = copy.with_name(copy.name + "-wal")
    with open(cut, "r+b") as handle:
        handle.truncate(max(32, cut.stat().st_size - 3000))
    history, notes = open_history(copy)
    assert not notes or "recovered" in notes[0]
    assert integrity_problem(copy, quick=False) is None
    history.close()


def test_backup_while_writing_and_restore(tmp_path):
    db = tmp_path / "live.sqlite"
    history = History(db)
    fill(history, 3000)
    stop = threading.Event()
    written = [0]

    def writer():
        while not stop.is_set():
            history.record("fan", "upload", "ok", score=1.0)
            written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.05)
        count = backup(db, tmp_path / "backup.sqlite")
    finally:
        stop.set()
        thread.join()
    assert count >= 3000 and written[0] > 0
    assert integrity_problem(tmp_path / "backup.sqlite", quick=False) is None
    # restore into the live database while it is open
    total = history.count()
    assert total > count or total == count
    assert restore(tmp_path / "backup.sqlite", db) == count
    assert history.count() == count
    history.record("fan", "upload", "ok", score=2.0)  # the open history keeps working
    assert history.count() == count + 1
    history.close()
    assert backup(tmp_path / "live.sqlite", tmp_path) >= count  # into a folder: dated file
    with pytest.raises(ConfigError, match="not a sound history backup"):
        (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
        restore(tmp_path / "junk.sqlite", db)


def test_keep_days_retention(scorer, tmp_path):
    history = History(tmp_path / "h.sqlite")
    now = time.time()
    fill(history, 100, ts0=now - 10 * 86400, step=0.0)  # ten days old
    fill_new = [history.record("fan", "upload", "ok", score=1.0) for _ in range(5)]
    assert len(fill_new) == 5
    Service(scorer, history, keep_days=3)  # applied at start
    assert history.count() == 5
    with pytest.raises(ConfigError):
        prune_older(history, 0)
    history.close()


def test_the_watcher_retries_a_failed_write(scorer, tmp_path, monkeypatch):
    from soundwatch.monitor.watch import FolderWatcher

    folder = tmp_path / "in" / "fan"
    write_clip(folder / "a.wav", 0.1)
    history = History(tmp_path / "h.sqlite")
    watcher = FolderWatcher(scorer, history, tmp_path / "in", settle=0, poll=0.01, rescan=0)
    watcher.retry = 0.0
    real = history.record
    fails = [1]

    def flaky(*args, **kwargs):
        if fails[0]:
            fails[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(history, "record", flaky)
    watcher.run(once=True)
    assert watcher.write_failures == 1 and watcher.scored == 1
    assert history.count() == 1
    history.close()


def test_history_commands(tmp_path, capsys, monkeypatch):
    import sys

    from soundwatch.cli import main

    def cli(*args):
        monkeypatch.setattr(sys, "argv", ["soundwatch", "history", *map(str, args)])
        try:
            main()
        except SystemExit as exc:
            return exc.code
        return 0

    run = tmp_path / "run"
    (run / "monitor").mkdir(parents=True)
    with History(run / "monitor" / "history.sqlite") as history:
        fill(history, 50, ts0=time.time() - 30 * 86400)
        fill(history, 10, ts0=time.time())
    assert cli("check", run) == 0 and "ok" in capsys.readouterr().out
    assert cli("backup", run, tmp_path / "b.sqlite") == 0
    assert "60 clip(s)" in capsys.readouterr().out
    assert cli("prune", run, "--keep-days", "7") == 0
    assert "deleted 50" in capsys.readouterr().out
    assert cli("restore", tmp_path / "b.sqlite", run) == 0
    assert "restored 60" in capsys.readouterr().out
    damaged = tmp_path / "d.sqlite"
    shutil.copy(tmp_path / "b.sqlite", damaged)
    raw = bytearray(damaged.read_bytes())
    raw[4096:8192] = b"\xa5" * 4096  # the second page: the clips table's root
    damaged.write_bytes(bytes(raw))
    assert cli("check", damaged) == 1 and "DAMAGED" in capsys.readouterr().out
    assert cli("check", tmp_path / "missing.sqlite") == 2
    assert "no such history database" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no named pipes here")
def test_the_watcher_records_a_fifo_once_and_never_hangs(scorer, tmp_path):
    import os
    import signal

    from soundwatch.monitor.watch import FolderWatcher

    folder = tmp_path / "in" / "fan"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.wav")
    write_clip(folder / "a.wav", 0.1)
    history = History(tmp_path / "h.sqlite")

    def hung(signum, frame):
        raise TimeoutError("the watcher hung on a named pipe")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        for _ in range(2):  # a restarted watcher (a rescan) records nothing again
            watcher = FolderWatcher(scorer, history, tmp_path / "in", settle=0, poll=0.01,
                                    rescan=0)
            watcher.run(once=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    rows = history._reader().execute("SELECT name, status, error FROM clips").fetchall()
    assert sorted((r[0], r[1]) for r in rows) == [("a.wav", "ok"), ("pipe.wav", "error")]
    assert "named pipe" in [r[2] for r in rows if r[0] == "pipe.wav"][0]
    history.close()
