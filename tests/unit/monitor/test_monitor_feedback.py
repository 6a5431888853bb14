"""Feedback (add-normal), the daily trend, the state over a window and fed file names."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from monitor_helpers import write_clip

from helpers.cli import one_error_line, run_cli
from soundwatch.detectors.loading import load_run_detector
from soundwatch.errors import AudioError, ConfigError
from soundwatch.monitor.alerts import AlertRule
from soundwatch.monitor.history import History
from soundwatch.monitor.state import machine_state
from soundwatch.monitor.trend import daily_trend


@pytest.fixture
def run_copy(monitor_run, tmp_path):
    """A copy of the session's run: feedback changes the run it is given."""
    return shutil.copytree(monitor_run, tmp_path / "run")


def test_add_normal_refits_scorer_and_threshold(run_copy, tmp_path):
    from soundwatch.decisions import Decider
    from soundwatch.monitor.feedback import add_normal
    from soundwatch.monitor.scoring import MachineScorer, load_native
    from soundwatch.pipeline import training_normals
    from soundwatch.runs import Run

    probe = load_native(write_clip(tmp_path / "probe.wav", 0.3, seed=77))
    assert MachineScorer([run_copy]).score_signal("fan", *probe).decision == 1  # louder: flagged
    before = Decider.from_detector(load_run_detector(Run.open(run_copy), "fan"))
    pump_before = Decider.from_detector(load_run_detector(Run.open(run_copy), "pump"))
    louder = [write_clip(tmp_path / f"new{i}.wav", 0.3, seed=50 + i) for i in range(3)]
    change = add_normal(run_copy, "fan", louder, no_cache=True)
    assert change["threshold_before"] == pytest.approx(before.threshold)
    assert change["train_clips"] == 11 and change["via"] == "cli"
    run = Run.open(run_copy)
    detector = load_run_detector(run, "fan")
    assert Decider.from_detector(detector).threshold == pytest.approx(change["threshold_after"])
    # such recordings are normal now; the other machine is untouched
    assert MachineScorer([run_copy]).score_signal("fan", *probe).decision == 0
    pump = Decider.from_detector(load_run_detector(run, "pump"))
    assert pump.threshold == pump_before.threshold
    recorded = run.info["changes"]
    assert len(recorded) == 1 and recorded[0]["machine"] == "fan"
    import hashlib

    for item, path in zip(recorded[0]["files"], louder, strict=True):
        assert item["name"] == path.name
        assert item["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (run_copy / item["stored"]).read_bytes() == path.read_bytes()
    assert run.info["machines"]["fan"]["added_normals"] == 3
    # the training-scores table holds the added clips; refit and add-normal see them too
    from soundwatch.scores import read_scores_table

    table = read_scores_table(run.train_scores_path)
    assert (table["machine"] == "fan").sum() == 11 and (table["machine"] == "pump").sum() == 8
    assert len(training_normals(run)["fan"]) == 11
    # the same content again: nothing added, nothing refitted
    again = add_normal(run_copy, "fan", [louder[0]], no_cache=True)
    assert again["files"] == [] and again["already"] == ["new0.wav"]
    assert len(Run.open(run_copy).info["changes"]) == 1


def test_add_normal_refuses_bad_input(run_copy, tmp_path):
    from soundwatch.monitor.feedback import add_normal

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio" * 100)
    good = write_clip(tmp_path / "good.wav", 0.1, seed=3)
    with pytest.raises(AudioError):
        add_normal(run_copy, "fan", [good, bad], no_cache=True)
    assert "changes" not in json.loads((run_copy / "run.json").read_text())
    assert not (run_copy / "normal").exists()  # checked before anything changed
    with pytest.raises(ConfigError, match="not in the run"):
        add_normal(run_copy, "valve", [good])
    with pytest.raises(ConfigError, match="at least one"):
        add_normal(run_copy, "fan", [])


def test_add_normal_cli(run_copy, tmp_path, monkeypatch, capsys):
    clip = write_clip(tmp_path / "pumpA_2026-01-09.wav", 0.2, seed=9)
    code, out, err = run_cli(monkeypatch, capsys, "add-normal", run_copy, clip, "--machine",
                             "pump", "--no-cache")
    assert code == 0, err
    assert out.startswith("pump: 1 recording(s) added as normal; scorer refitted on 9 clip(s)")
    code, out, err = run_cli(monkeypatch, capsys, "add-normal", run_copy, clip, "-m", "pump")
    assert code == 0 and "already added" in err and "nothing new" in out
    code, _, err = run_cli(monkeypatch, capsys, "add-normal", run_copy, tmp_path / "nope.wav",
                           "-m", "pump")
    assert code == 2 and "nope.wav" in one_error_line(err)


def test_daily_trend(tmp_path):
    day = 86400.0
    now = 20 * day + 3600
    with History(tmp_path / "h.sqlite") as history:
        for i, score in enumerate((1.0, 2.0, 3.0, 10.0)):
            history.record("fan", "watch", "ok", ts=now - day + i, score=score, threshold=5.0,
                           decision=int(score > 5))
        history.record("fan", "watch", "sensor", ts=now - day + 9, score=99.0, decision=1,
                       error="silent")
        history.record("fan", "watch", "ok", ts=now, score=4.0, threshold=6.0, decision=0)
        history.record("fan", "watch", "error", ts=now, error="bad")
        history.record("pump", "watch", "ok", ts=now, score=1.0, decision=0)
        history.record("fan", "watch", "ok", ts=now - 40 * day, score=1.0, decision=0)
        days = daily_trend(history, "fan", 30, now=now)
    assert [d["day"] for d in days] == ["1970-01-20", "1970-01-21"]
    first, second = days
    assert (first["clips"], first["scored"], first["anomalies"], first["sensor"]) == (5, 4, 1, 1)
    assert first["median"] == pytest.approx(2.5) and first["max"] == 10.0
    assert first["anomaly_rate"] == pytest.approx(0.25) and first["threshold"] == 5.0
    assert (second["clips"], second["errors"], second["threshold"]) == (2, 1, 6.0)
    with pytest.raises(ConfigError):
        daily_trend(tmp_path / "h.sqlite", "fan", 0)


def _c(decision, status="ok"):
    return {"machine": "fan", "decision": decision, "status": status}


def test_state_over_a_window():
    rule = AlertRule(3, 5)
    assert machine_state([], rule)["state"] == "idle"
    # 10 anomalies in the last 20, the last clip normal: not "normal"
    clips = [_c(i % 2) for i in range(20)]
    state = machine_state(clips, rule, window=20)
    assert (state["state"], state["window_anomalies"], state["rule_holds"]) == (
        "anomaly", 10, True)
    assert machine_state([_c(1)] + [_c(0)] * 10, rule)["state"] == "watch"
    assert machine_state([_c(1)] + [_c(0)] * 10, rule, window=5)["state"] == "normal"
    # a silent clip flagged by the scorer is a sensor fault, never an anomaly
    silent = machine_state([_c(0), _c(1, "sensor")], rule)
    assert silent["state"] == "sensor" and silent["window_anomalies"] == 0
    assert silent["window_sensor"] == 1
    assert machine_state([_c(0), _c(None, "error")], rule)["state"] == "error"


def test_service_window_trend_names_and_feedback(monitor_run, tmp_path):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")
    from fastapi.testclient import TestClient

    from soundwatch.monitor.alerts import Alerter
    from soundwatch.monitor.feed import multipart_body
    from soundwatch.monitor.scoring import MachineScorer
    from soundwatch.monitor.service import Service, create_app

    run = shutil.copytree(monitor_run, tmp_path / "run")
    scorer = MachineScorer([run], channel="mean")  # --channel: kept through the feedback
    history = History(tmp_path / "h.sqlite")
    service = Service(scorer, history, alerter=Alerter(rule=AlertRule(2, 3, 600)))
    ids = []
    with TestClient(create_app(service)) as client:
        for i, amp in enumerate((0.1, 0.9, 0.9, 0.1)):
            clip = write_clip(tmp_path / "feed" / "id_00" / "abnormal" / f"{i:08d}.wav", amp,
                              seed=200 + i)
            body, ctype = multipart_body(f"id_00/abnormal/{clip.name}", clip.read_bytes(),
                                         "audio/wav")
            answer = client.post("/v1/machines/fan/score", content=body,
                                 headers={"Content-Type": ctype}).json()
            assert answer["name"] == f"id_00/abnormal/{clip.name}" and answer["status"] == "ok"
            ids.append(answer["id"])
        # a name cannot climb out or be absolute (it is only shown, but stays clean)
        body, ctype = multipart_body("/etc/../../x/./y.wav", clip.read_bytes(), "audio/wav")
        assert client.post("/v1/machines/fan/score", content=body, headers={
            "Content-Type": ctype}).json()["name"] == "etc/x/y.wav"
        fan = {m["machine"]: m for m in client.get("/v1/machines?window=4").json()}["fan"]
        # 2 anomalies among the last 4 clips, but not 2 among the last 3: "watch"
        assert (fan["state"], fan["window_anomalies"], fan["window_clips"]) == ("watch", 2, 4)
        assert not fan["rule_holds"]
        assert fan["rule"] == {"k": 2, "n": 3, "cooldown_s": 600,
                               "text": "2 anomalous of the last 3 scored clips, then at most "
                                       "one alert per 600 s"}
        trend = client.get("/v1/machines/fan/trend?days=7").json()
        assert trend["days"][0]["clips"] == 5 and trend["days"][0]["anomalies"] == 2
        assert client.get("/v1/machines/valve/trend").status_code == 404
        # feedback: the two loud clips judged normal raise fan's threshold, in use at once
        old = fan["threshold"]
        answer = client.post("/v1/machines/fan/normal", json={"clips": ids[1:3]})
        assert answer.status_code == 200, answer.text
        change = answer.json()
        assert change["threshold"] != old and change["via"] == "service"
        assert change["threshold_after"] == change["threshold"]
        assert scorer.machines["fan"].context.channel == "mean"  # the reloaded detector's
        assert [f["name"] for f in change["files"]] == [
            "id_00/abnormal/00000001.wav", "id_00/abnormal/00000002.wav"]
        again = client.post("/v1/machines/fan/score", files={"file": (
            "again.wav", (tmp_path / "feed/id_00/abnormal/00000001.wav").read_bytes())}).json()
        assert again["threshold"] == pytest.approx(change["threshold"])
        assert json.loads((run / "run.json").read_text())["changes"][0]["machine"] == "fan"
        for clips, status in (([99999], 404), ([], 400)):
            refused = client.post("/v1/machines/fan/normal", json={"clips": clips})
            assert refused.status_code == status and "error" in refused.json()
        pump_clip = history.record("pump", "watch", "ok", score=1.0, decision=0)["id"]
        refused = client.post("/v1/machines/fan/normal", json={"clips": [pump_clip]})
        assert refused.status_code == 400 and "pump clip" in refused.json()["error"]
    history.close()


def test_feed_name_keeps_folders(tmp_path):
    from soundwatch.monitor.feed import feed_name

    clip = write_clip(tmp_path / "fan" / "id_00" / "normal" / "00000000.wav")
    assert feed_name(clip, [tmp_path]) == "fan/id_00/normal/00000000.wav"
    assert feed_name(clip, [clip]) == "00000000.wav"
    assert time.time() > 0


def test_sensor_verdict_is_recorded_and_never_an_anomaly(monitor_run, tmp_path):
    """A scorer verdict with a sensor status (``status``/``status_reason``) reaches the
    history, the answer and the state as a sensor fault, even with decision 1."""
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")
    import dataclasses

    from fastapi.testclient import TestClient

    from soundwatch.monitor.alerts import Alerter
    from soundwatch.monitor.scoring import MachineScorer
    from soundwatch.monitor.service import Service, create_app

    scorer = MachineScorer([monitor_run])
    real = scorer.score_signal
    scorer.score_signal = lambda *a, **k: dataclasses.replace(
        real(*a, **k), status="sensor", status_reason="all samples are zero", decision=1)
    fired = []
    alerter = Alerter(command="true", rule=AlertRule(1, 1))
    alerter._queue.put = fired.append  # what would be sent
    with History(tmp_path / "h.sqlite") as history:
        service = Service(scorer, history, alerter=alerter)
        with TestClient(create_app(service)) as client:
            clip = write_clip(tmp_path / "silent.wav", 0.1, seed=1)
            answer = client.post("/v1/machines/fan/score", files={"file": (
                "silent.wav", clip.read_bytes())}).json()
            assert answer["status"] == "sensor"
            assert answer["status_reason"] == "all samples are zero"
            fan = {m["machine"]: m for m in client.get("/v1/machines").json()}["fan"]
            assert (fan["state"], fan["anomalies"], fan["sensor"]) == ("sensor", 0, 1)
            assert client.get("/v1/events").json()["events"] == []
    assert fired == []
