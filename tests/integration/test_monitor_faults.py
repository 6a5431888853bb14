"""``serve`` and ``watch`` under faults while writing: repeated kill -9, both on one database,
a full disk (tmpfs), and the page showing a degraded service and hostile file names."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from monitor_support import free_port, start, train_run, wait_for, write_clip

httpx = pytest.importorskip("httpx", reason="httpx is not installed (the serve extra)")
pytest.importorskip("fastapi", reason="fastapi is not installed (the serve extra)")

CHROMIUM = os.environ.get("SOUNDWATCH_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> bytes:
    return write_clip(tmp_path_factory.mktemp("clip") / "c.wav", 0.1).read_bytes()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _check(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


class Clients:
    """Threads posting clips with unique request ids; what was answered 200 is accepted,
    what got no answer is retried (same id) until accepted."""

    def __init__(self, url: str, body: bytes, threads: int = 4) -> None:
        self.url, self.body = url, body
        self.accepted: set[str] = set()
        self.unsure: set[str] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]

    def post(self, client: httpx.Client, rid: str) -> bool:
        try:
            r = client.post(f"{self.url}/v1/machines/fan/score", content=self.body,
                            headers={"Content-Type": "audio/wav", "X-Request-ID": rid})
        except httpx.HTTPError:
            with self.lock:
                self.unsure.add(rid)
            return False
        with self.lock:
            if r.status_code == 200:
                self.accepted.add(rid)
                self.unsure.discard(rid)
            else:
                self.unsure.add(rid)
        return r.status_code == 200

    def _work(self) -> None:
        with httpx.Client(timeout=20) as client:
            while not self.stop.is_set():
                if not self.post(client, uuid.uuid4().hex):
                    time.sleep(0.05)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def retry(self) -> None:
        with httpx.Client(timeout=20) as client:
            for rid in sorted(self.unsure):
                for _ in range(5):
                    if self.post(client, rid):
                        break


@pytest.mark.slow
def test_repeated_kill9_of_serve_and_watch_on_one_database(run_dir, clip_bytes, tmp_path):
    """serve and watch write one database; each is killed -9 at random points, three times.
    Every accepted request and every file is recorded exactly once, the database is sound,
    and no "database is locked" reaches a user."""
    rng = random.Random(28)
    port, db = free_port(), tmp_path / "history.sqlite"
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path / "incoming" / "fan"
    folder.mkdir(parents=True)
    slog, wlog = tmp_path / "serve.log", tmp_path / "watch.log"

    def serve() -> subprocess.Popen:
        proc = start("serve", run_dir, "--port", port, "--db", db, log=slog)
        wait_for(lambda: _healthy(port), 90, "serve to answer", proc, slog)
        return proc

    def watch() -> subprocess.Popen:
        return start("watch", run_dir, folder.parent, "--db", db, "--settle", "0.2",
                     "--poll", "0.05", "--rescan", "1", log=wlog)

    server, watcher = serve(), watch()
    files = 0
    try:
        with Clients(url, clip_bytes) as clients:
            for victim in ("serve", "watch", "serve"):
                for _ in range(8):  # files land while both write
                    write_clip(folder / f"clip{files:04d}.wav", 0.1, seed=files)
                    files += 1
                time.sleep(rng.uniform(1.0, 3.0))
                if victim == "serve":
                    server.kill()
                    server.wait(10)
                    server = serve()
                else:
                    watcher.kill()
                    watcher.wait(10)
                    watcher = watch()
            time.sleep(1.0)
        clients.retry()
        wait_for(lambda: _watched(db) >= files, 90, "watch to record every file", watcher, wlog)
    finally:
        for proc in (server, watcher):
            proc.kill()
            proc.wait(10)
    _check(db)
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT request_id FROM clips WHERE source='upload'")]
        paths = [r[0] for r in conn.execute("SELECT path FROM clips WHERE source='watch'")]
    assert clients.accepted and not clients.unsure - clients.accepted
    assert set(ids) >= clients.accepted
    assert len(ids) == len(set(ids)), "an upload was recorded twice"
    assert len(paths) == len(set(paths)) == files, "a file was lost or recorded twice"
    logs = slog.read_text(errors="replace") + wlog.read_text(errors="replace")
    assert "database is locked" not in logs
    assert "Traceback" not in logs


def _watched(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM clips WHERE source='watch'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def tmpfs(tmp_path):
    """A 3 MiB tmpfs (root only): a disk that really fills up."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount],
                          capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    yield mount
    subprocess.run(["umount", "-l", mount], capture_output=True)


def test_a_full_disk_is_refused_reported_and_recovered(run_dir, clip_bytes, tmpfs):
    from fastapi.testclient import TestClient

    from soundwatch.monitor.history import History
    from soundwatch.monitor.scoring import MachineScorer
    from soundwatch.monitor.service import Service, create_app

    db = tmpfs / "history.sqlite"
    history = History(db)
    service = Service(MachineScorer([run_dir]), history, keep_clips=0)
    headers = {"Content-Type": "audio/wav"}
    with TestClient(create_app(service)) as client:
        for i in range(5):
            h = {**headers, "X-Request-ID": f"before{i}"}
            assert client.post("/v1/machines/fan/score", content=clip_bytes, headers=h
                               ).status_code == 200
        filler = tmpfs / "filler"
        with open(filler, "wb", buffering=0) as handle:  # fill the disk to the last byte
            for size in (65536, 512):
                try:
                    while handle.write(b"\0" * size):
                        pass
                except OSError:
                    pass
        refused = 0
        for i in range(40):
            h = {**headers, "X-Request-ID": f"full{i}"}
            r = client.post("/v1/machines/fan/score", content=clip_bytes, headers=h)
            assert r.status_code in (200, 503), r.text
            if r.status_code == 503:
                refused += 1
                assert "error" in r.json() and "\n" not in r.json()["error"]
        assert refused, "the full disk was never noticed"
        body = client.get("/healthz").json()
        assert body["status"] == "degraded"
        assert any("full" in reason for reason in body["reasons"]), body
        filler.unlink()
        for i in range(40):  # the refused ones, retried with their ids
            h = {**headers, "X-Request-ID": f"full{i}"}
            assert client.post("/v1/machines/fan/score", content=clip_bytes, headers=h
                               ).status_code == 200
        assert client.get("/healthz").json()["status"] == "ok"
    assert history.count() == 45
    history.close()
    _check(db)


@pytest.mark.slow
def test_the_page_shows_a_degraded_service_and_never_runs_a_file_name(run_dir, clip_bytes,
                                                                      tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright (python package) is not installed: pip install playwright")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    port, log = free_port(), tmp_path / "serve.log"
    proc = start("serve", run, "--port", port, "--db", tmp_path / "h.sqlite", log=log)
    url = f"http://127.0.0.1:{port}"
    evil = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">.wav'
    loud = write_clip(tmp_path / "loud.wav", 0.9).read_bytes()
    try:
        wait_for(lambda: _healthy(port), 90, "serve to answer", proc, log)
        r = httpx.post(f"{url}/v1/machines/fan/score", files={"file": (evil, loud, "audio/wav")})
        assert r.status_code == 200 and r.json()["decision"] == 1
        shown = r.json()["name"]  # the base name (the part after the last "/")
        assert "<img" in shown or "<script>" in shown
        shutil.rmtree(run / "detector" / "pump")  # the run folder changes under the server
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--no-first-run"])
            try:
                page = browser.new_page()
                page.goto(url + "/")
                page.wait_for_selector("#anomalies tbody tr", timeout=20000)
                page.wait_for_selector("#health:not([hidden])", timeout=20000)
                assert "degraded" in page.inner_text("#health")
                assert "was deleted" in page.inner_text("#health")
                assert shown in page.inner_text("#anomalies")  # shown as text
                page.locator("#anomalies tbody tr").first.click()
                page.wait_for_function("() => document.getElementById('detail-facts')"
                                       ".innerText.includes('onerror')", timeout=10000)
                page.wait_for_timeout(500)
                assert page.evaluate("() => window.__pwned") is None
                assert page.locator("#anomalies img, #detail-facts img, script:not([src])"
                                    ).count() == 0
            finally:
                browser.close()
    finally:
        proc.kill()
        proc.wait(10)
