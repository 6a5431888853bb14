"""``soundwatch serve`` as a process: posted clips, kill -9 and restart, the page in Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from monitor_support import SOUNDWATCH, free_port, start, train_run, wait_for, write_clip

from helpers.cli import run_cli as cli

httpx = pytest.importorskip("httpx", reason="httpx is not installed (the serve extra)")
pytest.importorskip("fastapi", reason="fastapi is not installed (the serve extra)")

CHROMIUM = os.environ.get("SOUNDWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = os.environ.get("SOUNDWATCH_SCREENSHOT")  # e.g. docs/monitoring_screenshot.png


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("serve_e2e"))


@pytest.fixture
def server(run_dir, tmp_path):
    """Start ``soundwatch serve``; yield (base URL, start function, db path); kill at the end."""
    port = free_port()
    db = tmp_path / "history.sqlite"
    log = tmp_path / "serve.log"
    procs: list[subprocess.Popen] = []

    def launch(*extra: object, run: Path = run_dir) -> subprocess.Popen:
        proc = start("serve", run, "--host", "127.0.0.1", "--port", port, "--db", db,
                     *map(str, extra), log=log)
        procs.append(proc)
        wait_for(lambda: _healthy(port), 90, "the service to answer /healthz", proc, log)
        return proc

    yield f"http://127.0.0.1:{port}", launch, db, log
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _post(url: str, machine: str, path: Path) -> dict:
    with open(path, "rb") as handle:
        response = httpx.post(f"{url}/v1/machines/{machine}/score",
                              files={"file": (path.name, handle, "audio/wav")}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
def test_serve_records_survive_kill_and_restart(server, tmp_path):
    url, launch, db, log = server
    proc = launch()
    bodies = [_post(url, m, write_clip(tmp_path / f"{m}{i}.wav", 0.9 if i == 3 else 0.1,
                                       seed=10 * i + len(m)))
              for m in ("fan", "pump") for i in range(5)]
    assert sum(b["decision"] for b in bodies) == 2
    bad = httpx.post(f"{url}/v1/machines/fan/score", content=b"not audio" * 50,
                     headers={"Content-Type": "audio/wav"}, timeout=30)
    assert bad.status_code == 422 and "not audio" in bad.json()["error"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 10
    launch()
    machines = {m["machine"]: m for m in httpx.get(f"{url}/v1/machines", timeout=10).json()}
    assert machines["fan"]["clips"] == 5 and machines["pump"]["anomalies"] == 1
    events = httpx.get(f"{url}/v1/events", timeout=10).json()["events"]
    assert sorted(e["id"] for e in events) == sorted(b["id"] for b in bodies if b["decision"])


def test_serve_refuses_bad_arguments(run_dir, tmp_path, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "serve", tmp_path / "nope")
    assert code == 2 and err.count("\n") == 1 and "no such run folder" in err
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = cli(monkeypatch, capsys, "serve", run_dir, "--port", port, "--db",
                           tmp_path / "h.sqlite")
    assert code == 2 and "cannot listen" in err, err


@pytest.mark.slow
def test_feed_posts_a_folder_once(server, tmp_path):
    url, launch, db, log = server
    launch()
    for machine in ("fan", "pump"):
        for i in range(3):
            write_clip(tmp_path / "clips" / machine / "test" / f"c{i}.wav", 0.1, seed=40 + i)
    first = subprocess.run([str(SOUNDWATCH), "feed", str(tmp_path / "clips"), "--url", url],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 6 and [line.split()[0] for line in lines[:2]] == ["fan", "pump"]
    again = subprocess.run([str(SOUNDWATCH), "feed", str(tmp_path / "clips"), "--url", url],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count("already recorded") == 6
    total = sum(m["clips"] for m in httpx.get(f"{url}/v1/machines", timeout=10).json())
    assert total == 6


def _has_explain() -> bool:
    try:
        import soundwatch.explain  # noqa: F401
    except ImportError:
        return False
    return True


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright (python package) is not installed: pip install playwright")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    return sync_playwright


@pytest.mark.slow
def test_page_in_headless_chromium(server, run_dir, tmp_path):
    """The page: state over a window with the alert rule, sensor status, fed names, feedback."""
    from soundwatch.monitor.history import History

    sync_playwright = _browser()
    url, launch, db, log = server
    run = tmp_path / "run"  # a copy: marking a clip normal refits the run's scorer
    shutil.copytree(run_dir, run)
    launch("--alert-k", 2, "--alert-n", 5, "--cooldown", 600, run=run)
    # an earlier burst, three hours ago (written as the watcher would): a pause on the axis
    with History(db) as history:
        import time

        for i in range(6):
            history.record("pump", "watch", "ok", ts=time.time() - 3 * 3600 + i, name=f"old{i}.wav",
                           score=1.0, threshold=2.0, decision=0, percentile=40.0, seconds=0.5)
    # fed clips with their names: fan's last two of five anomalous (2 of 5: the rule holds),
    # pump's one anomaly early (1 of the last 20: watch, not normal although its last clip is)
    for machine, loud in (("fan", (9, 10)), ("pump", (3,))):
        for i in range(12):
            name = f"{machine}A_2026-01-{i + 1:02d}.wav"
            write_clip(tmp_path / "feed" / machine / "line1" / name, 0.9 if i in loud else 0.1,
                       seed=100 + i + len(machine))
    fed = subprocess.run([str(SOUNDWATCH), "feed", str(tmp_path / "feed"), "--url", url],
                         capture_output=True, text=True, timeout=180)
    assert fed.returncode == 0, fed.stderr
    # a clip whose sensor is at fault (as the scorer records a silent recording)
    with History(db) as history:
        sensor = history.record("pump", "upload", "sensor", name="pumpA_silent.wav", score=239.0,
                                threshold=2.0, decision=0, percentile=100.0, seconds=0.5,
                                error="all samples are zero (dead sensor or muted input)")
    shot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "monitoring.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(url + "/?refresh=1")
            page.wait_for_selector('.card[data-machine="fan"].state-anomaly', timeout=20000)
            page.wait_for_selector('.card[data-machine="pump"].state-watch', timeout=20000)
            assert page.locator(".card").count() == 2
            fan = page.inner_text('.card[data-machine="fan"]')
            assert "2 of the last 12 clips anomalous" in fan, fan
            assert "2 anomalous of the last 5 scored clips" in fan and "met now" in fan, fan
            pump = page.inner_text('.card[data-machine="pump"]')
            assert "1 of the last 19 clips anomalous · 1 sensor fault" in pump, pump
            assert "not met" in pump and page.inner_text(
                '.card[data-machine="pump"] .badge').lower() == "watch"
            # both canvases drawn on (not blank)
            painted = page.evaluate("""() => [...document.querySelectorAll('canvas')]
                .map(c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height)
                  .data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
                  return n; })""")
            assert len(painted) == 4 and min(painted) > 500, painted
            # the anomalies table: machine anomalies only, under the names feed sent
            page.wait_for_selector("#anomalies tbody tr", timeout=10000)
            rows = page.inner_text("#anomalies tbody")
            assert page.locator("#anomalies tbody tr").count() == 3, rows
            assert "fan/line1/fanA_2026-01-11.wav" in rows and "body" not in rows, rows
            assert "silent" not in rows
            # the sensor clip (the last point of pump's timeline): a sensor fault, not an anomaly
            box = page.locator('.card[data-machine="pump"] canvas.timeline').bounding_box()
            page.mouse.click(box["x"] + box["width"] - 11, box["y"] + 11)  # clipped: top edge
            page.wait_for_function("() => document.getElementById('detail-facts')"
                                   ".innerText.includes('pumpA_silent.wav')", timeout=10000)
            facts = page.inner_text("#detail-facts")
            assert "SENSOR FAULT" in facts and "all samples are zero" in facts, facts
            assert "ANOMALY" not in facts and page.locator("#mark-normal").is_hidden()
            assert sensor["id"] > 0
            # a clicked anomaly shows its spectrogram
            page.locator("#anomalies tbody tr").first.click()
            page.wait_for_function(
                "() => { const i = document.getElementById('spectrogram');"
                " return !i.hidden && i.complete && i.naturalWidth > 0; }", timeout=20000)
            assert "ANOMALY" in page.inner_text("#detail-facts")
            # ... and its explanation (soundwatch.explain) or why there is none
            page.wait_for_function(
                "() => { const i = document.getElementById('explanation');"
                " const m = document.getElementById('explanation-msg');"
                " return (!i.hidden && i.complete && i.naturalWidth > 0)"
                " || (!m.hidden && m.textContent !== 'loading…'); }", timeout=60000)
            if _has_explain():
                assert page.locator("#explanation-msg").is_hidden(), \
                    page.inner_text("#explanation-msg")
            page.screenshot(path=str(shot), full_page=True)
            # feedback: the anomaly judged normal joins fan's normal data
            page.locator("#mark-normal").click()
            page.wait_for_function("() => document.getElementById('feedback-msg')"
                                   ".textContent.includes('threshold')", timeout=60000)
            assert "added to fan's normal data" in page.inner_text("#feedback-msg")
            assert errors == [], errors
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    import json

    changes = json.loads((run / "run.json").read_text())["changes"]
    assert [c["files"][0]["name"] for c in changes] == ["fan/line1/fanA_2026-01-11.wav"]
