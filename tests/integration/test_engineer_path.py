"""The engineer's path (issue 25), end to end on recordings with arbitrary names.

A pump's normal recordings ``pumpA_2026-01-0X.wav`` in a plain folder; train on them with
``--machine``; score a folder of new recordings (normal, faulty and one silent clip);
change the alarm level; add normal recordings; then ``watch --once``, ``serve`` + ``feed``
and the exported runtime. Every path flags the same clips, and the silent clip is a
sensor status everywhere, never an anomaly. Loopback only; a few seconds of audio.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from monitor_support import SOUNDWATCH, free_port, start, wait_for

from helpers.cli import run_cli as cli

SR = 16000
SECONDS = 2.0
FAULTY = {"pumpA_2026-02-14.wav", "pumpA_2026-02-15.wav"}
SILENT = "pumpA_2026-02-16.wav"


def _pump(seed: int, fault: bool = False) -> np.ndarray:
    """A pump: a 50 Hz hum with harmonics and noise; a fault adds a 3.1 kHz whine and knocks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * SECONDS)) / SR
    f0 = 50 * (1 + 0.01 * rng.standard_normal())
    x = sum(0.08 / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) for k in range(1, 8))
    x = x + 0.02 * rng.standard_normal(t.size)
    if fault:
        x = (x + 0.06 * np.sin(2 * np.pi * 3100 * t) * (1 + np.sin(2 * np.pi * 7 * t))
             + 0.05 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 3 * t) > 0.7))
    return (x / max(1.0, float(np.abs(x).max()))).astype(np.float32)


def _write(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, SR, subtype="PCM_16")


def _flagged(table: pd.DataFrame, path: str = "path", decision: str = "decision") -> set[str]:
    return {Path(str(p)).name for p, d in zip(table[path], table[decision], strict=True)
            if int(d) == 1}


def _score(monkeypatch, capsys, run: Path, folder: Path) -> tuple[pd.DataFrame, str]:
    code, out, err = cli(monkeypatch, capsys, "score", run, folder, "-m", "pumpA", "--json")
    assert code == 0, err
    body = json.loads(out)
    return pd.DataFrame(body["clips"]), body["scores_dir"]


def test_the_engineers_path(tmp_path, monkeypatch, capsys):
    httpx = pytest.importorskip("httpx", reason="httpx is not installed (the serve extra)")
    pytest.importorskip("fastapi", reason="fastapi is not installed (the serve extra)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the export extra)")
    recordings, check, more = tmp_path / "recordings", tmp_path / "to_check", tmp_path / "more"
    for i in range(1, 9):
        _write(recordings / f"pumpA_2026-01-0{i}.wav", _pump(i))
    for i in range(10, 16):
        name = f"pumpA_2026-02-{i}.wav"
        _write(check / name, _pump(i, fault=name in FAULTY))
    _write(check / SILENT, np.zeros(int(SR * SECONDS), np.float32))
    for i in range(20, 24):
        _write(more / f"pumpA_2026-03-{i}.wav", _pump(i))
    run = tmp_path / "run"

    # the help names the real default detector
    code, out, _ = cli(monkeypatch, capsys, "train", "--help")
    assert code == 0 and "recommended robust" in out

    # 1. train from a plain folder of one machine; the run states its false-alarm cost
    code, out, err = cli(monkeypatch, capsys, "train", recordings, "--machine", "pumpA",
                         "-d", "mahalanobis", "--no-cache", "--out", run)
    assert code == 0, err
    assert "far:0.01" in out and "estimated false-alarm rate" in out
    assert "with 8 normal training clips" in out  # few clips: said, with numbers
    code, out, err = cli(monkeypatch, capsys, "inspect", run, "--json")
    assert code == 0, err
    assert json.loads(out)["self_check"]["pumpA"]["trust"] == "low"  # 8 clips: said so

    # 2. score another folder: the faulty clips flagged, the silent one a sensor status
    scored, _ = _score(monkeypatch, capsys, run, check)
    assert len(scored) == 7
    first = _flagged(scored)
    assert first >= FAULTY and SILENT not in first
    silent = scored.set_index(scored["path"].map(lambda p: Path(p).name)).loc[SILENT]
    assert silent["status"] == "sensor" and "silent" in silent["status_reason"]

    # 3. a new alarm level without retraining: stated, recorded and followed
    code, out, err = cli(monkeypatch, capsys, "threshold", run, "--far", "0.2")
    assert code == 0 and "far:0.2" in out and "estimated false-alarm rate" in out, err
    rescored, _ = _score(monkeypatch, capsys, run, check)
    assert (rescored["threshold"] < scored["threshold"]).all() and _flagged(rescored) >= first

    # 4. feedback: recordings judged normal join pumpA's normal data; the scorer is refitted
    before = json.loads((run / "decisions" / "pumpA.json").read_text())["threshold"]
    code, out, err = cli(monkeypatch, capsys, "add-normal", run, *sorted(more.glob("*.wav")),
                         "--machine", "pumpA")
    assert code == 0, err
    assert "4 recording(s) added" in out and "12 clip(s)" in out
    change = json.loads((run / "run.json").read_text())["changes"][-1]
    assert change["kind"] == "add-normal" and change["threshold_before"] == pytest.approx(before)
    code, out, err = cli(monkeypatch, capsys, "inspect", run, "--json")
    assert code == 0, err
    assert json.loads(out)["self_check"]["pumpA"]["clips"] == 12
    code, out, err = cli(monkeypatch, capsys, "threshold", run, "--far", "0.05")
    assert code == 0, err

    # the decision every path below must repeat
    final, scores_dir = _score(monkeypatch, capsys, run, check)
    flagged = _flagged(final)
    assert flagged >= FAULTY and SILENT not in flagged
    threshold = float(final["threshold"].iloc[0])
    csv_table = pd.read_csv(run / scores_dir / "scores.csv", keep_default_na=False)
    assert _flagged(csv_table) == flagged
    assert dict(zip(csv_table["path"].map(lambda p: Path(p).name), csv_table["status"],
                    strict=True))[SILENT] == "sensor"

    # 5. evaluate: its counts and the report list the same clips, never refitted
    code, out, err = cli(monkeypatch, capsys, "evaluate", run, Path(scores_dir).name, "--json",
                         "--no-plots", "--explain", 0)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["decision"]["source"] == "scoring"
    assert metrics["decision"]["policy"] == "far:0.05"
    assert metrics["counts"]["flagged"] == len(flagged) and metrics["counts"]["sensor"] == 1
    report = (run / scores_dir / "report.html").read_text()
    rows = re.findall(r'<tr class="(flagged|sensor|)"><td class="file" title="([^"]+)"', report)
    assert len(rows) == 7, "every clip is listed in the report"
    assert {Path(p).name for c, p in rows if c == "flagged"} == flagged
    assert {Path(p).name for c, p in rows if c == "sensor"} == {SILENT}

    # 6. watch --once a folder: its history holds the same decisions
    db = tmp_path / "watch.sqlite"
    code, out, err = cli(monkeypatch, capsys, "watch", run, check, "--machine", "pumpA",
                         "--db", db, "--once", "--alert-k", 2, "--alert-n", 5)
    assert code == 0, err
    assert "7 scored, 0 error(s)" in out + err
    with sqlite3.connect(db) as con:
        history = pd.read_sql("SELECT name, status, decision, threshold FROM clips", con)
    assert len(history) == 7 and _flagged(history, "name") == flagged
    assert history.set_index("name").loc[SILENT, "status"] == "sensor"
    assert history["threshold"].astype(float).to_numpy() == pytest.approx(threshold)

    # 7. serve on loopback; feed the folder (file names, --machine); the service agrees
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    proc = start("serve", run, "--host", "127.0.0.1", "--port", port, "--db",
                 tmp_path / "serve.sqlite", "--alert-k", 2, "--alert-n", 5, log=log)
    try:
        wait_for(lambda: _healthy(httpx, url), 90, "the service to answer /healthz", proc, log)
        fed = subprocess.run([str(SOUNDWATCH), "feed", str(check), "--url", url,
                              "--machine", "pumpA"], capture_output=True, text=True, timeout=120)
        assert fed.returncode == 0, fed.stderr
        assert "posted 7 clip(s)" in fed.stdout + fed.stderr
        (line,) = [x for x in fed.stdout.splitlines() if SILENT in x]
        assert "SENSOR" in line and "silent" in line and "score" not in line
        answer = httpx.get(f"{url}/v1/machines/pumpA/history", timeout=10).json()
        clips = pd.DataFrame(answer["clips"])
        assert sorted(clips["name"]) == sorted(p.name for p in check.glob("*.wav"))
        assert _flagged(clips, "name") == flagged
        assert clips.set_index("name").loc[SILENT, "status"] == "sensor"
        machines = httpx.get(f"{url}/v1/machines", timeout=10).json()
        (pump,) = machines
        assert pump["anomalies"] == len(flagged) and pump["sensor"] == 1
        assert pump["policy"] == "far:0.05" and pump["threshold"] == pytest.approx(threshold)
        assert pump["rule"]["k"] == 2 and pump["rule"]["n"] == 5
    finally:
        proc.kill()
        proc.wait(10)

    # 8. export; the runtime (onnxruntime + numpy) writes the same decisions
    code, _, err = cli(monkeypatch, capsys, "export", run, "--out", tmp_path / "export")
    assert code == 0, err
    from soundwatch.runtime.__main__ import write_scores

    buf = io.StringIO()
    write_scores(str(tmp_path / "export"), sorted(str(p) for p in check.glob("*.wav")), buf,
                 "pumpA")
    runtime = pd.read_csv(io.StringIO(buf.getvalue()), keep_default_na=False)
    assert {"score", "threshold", "decision", "percentile", "status"} <= set(runtime.columns)
    assert _flagged(runtime) == flagged
    assert runtime.set_index(runtime["path"].map(lambda p: Path(p).name)).loc[
        SILENT, "status"] == "sensor"


def _healthy(httpx, url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
