"""``soundwatch watch`` as a process: live files, partial writes, bad files, kill -9, restart."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from monitor_support import start, train_run, wait_for, write_clip

from helpers.cli import run_cli as cli

pytest.importorskip("watchdog", reason="watchdog is not installed (the serve extra)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("watch_cli"))


@pytest.fixture
def webhook():
    """A local webhook receiver on 127.0.0.1: yields (url, list of received JSON bodies)."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alert", got
    server.shutdown()
    server.server_close()


def rows(db: Path) -> list[dict]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM clips ORDER BY id")]
    except sqlite3.OperationalError:  # the schema is being created
        return []


@pytest.mark.slow
def test_watch_live_kill_and_restart(run_dir, tmp_path, webhook, monkeypatch):
    url, posted = webhook
    folder, db, log = tmp_path / "incoming", tmp_path / "h.sqlite", tmp_path / "watch.log"
    alerts = tmp_path / "alerts.txt"
    hook = (f"{shlex.quote(sys.executable)} -c "
            + shlex.quote("import os; open(os.environ['OUT'], 'a').write("
                          "os.environ['SOUNDWATCH_PATH'] + ' ' + os.environ['SOUNDWATCH_MACHINE']"
                          " + ' ' + os.environ['SOUNDWATCH_SCORE'] + '\\n')"))
    monkeypatch.setenv("OUT", str(alerts))  # inherited by the watcher and its hook
    args = ("watch", run_dir, folder, "--db", db, "--settle", "0.6", "--poll", "0.1",
            "--on-anomaly", hook, "--webhook", url)
    # files present before the watcher starts
    write_clip(folder / "fan" / "before1.wav", 0.1, seed=1)
    write_clip(folder / "pump" / "before2.wav", 0.1, seed=2)
    proc = start(*args, log=log)
    try:
        wait_for(lambda: len(rows(db)) == 2, 90, "the 2 files present at start", proc, log)
        # a normal and an anomalous file, written in place
        write_clip(folder / "fan" / "live_normal.wav", 0.1, seed=3)
        write_clip(folder / "fan" / "live_loud.wav", 0.9, seed=4)
        # a partial write: half the bytes, a pause shorter than --settle, then the rest
        full = write_clip(tmp_path / "staging.wav", 0.1, seconds=1.0, seed=5).read_bytes()
        with open(folder / "pump" / "partial.wav", "wb") as handle:
            handle.write(full[: len(full) // 2])
            handle.flush()
            time.sleep(0.3)
            handle.write(full[len(full) // 2:])
        # a bad file, and a file moved in atomically
        (folder / "fan" / "broken.wav").write_text("definitely not audio\n" * 100)
        moved = write_clip(tmp_path / "moved.wav", 0.1, seed=6)
        os.replace(moved, folder / "pump" / "moved.wav")
        wait_for(lambda: len(rows(db)) == 7, 60, "7 recorded clips", proc, log)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # files that arrive while the watcher is down
        write_clip(folder / "fan" / "while_down.wav", 0.1, seed=7)
        write_clip(folder / "pump" / "while_down_loud.wav", 0.9, seed=8)
        proc = start(*args, log=log)
        wait_for(lambda: len(rows(db)) == 9, 90, "the 2 files written while down", proc, log)
        time.sleep(1.0)  # a chance to (wrongly) score anything twice
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    recorded = rows(db)
    names = sorted(Path(r["path"]).name for r in recorded)
    assert names == sorted(["before1.wav", "before2.wav", "live_normal.wav", "live_loud.wav",
                            "partial.wav", "broken.wav", "moved.wav", "while_down.wav",
                            "while_down_loud.wav"])  # each file exactly once
    by_name = {Path(r["path"]).name: r for r in recorded}
    assert by_name["partial.wav"]["status"] == "ok" and by_name["partial.wav"]["seconds"] == 1.0
    assert by_name["broken.wav"]["status"] == "error"
    assert "not audio" in by_name["broken.wav"]["error"]
    assert by_name["live_loud.wav"]["decision"] == 1
    assert by_name["while_down_loud.wav"]["machine"] == "pump"
    anomalies = sorted(r["path"] for r in recorded if r["decision"] == 1)
    assert len(anomalies) == 2
    wait_for(lambda: alerts.exists() and len(alerts.read_text().splitlines()) == 2, 10,
             "two alert lines")
    lines = sorted(alerts.read_text().splitlines())
    assert [line.split()[0] for line in lines] == anomalies
    assert sorted(p["path"] for p in posted) == anomalies
    text = log.read_text()
    assert "ANOMALY" in text and "ERROR" in text and "broken.wav" in text
    assert "Traceback" not in text


def test_watch_once_resumes(run_dir, tmp_path, monkeypatch, capsys):
    folder, db = tmp_path / "in", tmp_path / "h.sqlite"
    for i in range(3):
        write_clip(folder / f"fan_{i}.wav", 0.1, seed=20 + i)
    args = ("watch", run_dir, folder, "--db", db, "--once")
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert len(out.splitlines()) == 3 and "3 scored" in err
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 0 and out == ""
    assert "0 scored, 0 error(s), 3 already recorded" in err


def test_watch_refuses_bad_arguments(run_dir, tmp_path, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "watch", run_dir, tmp_path / "nope")
    assert code == 2 and "no such folder" in err and err.count("\n") == 1
    code, _, err = cli(monkeypatch, capsys, "watch", run_dir, tmp_path, "--machine", "valve",
                       "--db", tmp_path / "h.sqlite")
    assert code == 2 and "unknown machine type" in err
