"""Alerts: the --on-anomaly command's environment and the webhook's JSON POST."""

from __future__ import annotations

import json
import shlex
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from soundwatch.errors import ConfigError
from soundwatch.monitor.alerts import Alerter, alert_env

RECORD = {"id": 7, "machine": "fan", "path": "/data/a b.wav", "score": 3.25, "threshold": 2.0,
          "percentile": 99.5, "decision": 1, "time": "2026-01-01T00:00:00.000Z"}


@pytest.fixture
def webhook_server():
    """A local HTTP server on 127.0.0.1 that keeps every POSTed JSON body."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()
    server.server_close()


def test_alert_env_names_everything():
    env = alert_env(RECORD)
    assert env["SOUNDWATCH_PATH"] == "/data/a b.wav"
    assert env["SOUNDWATCH_MACHINE"] == "fan"
    assert float(env["SOUNDWATCH_SCORE"]) == 3.25
    assert float(env["SOUNDWATCH_PERCENTILE"]) == 99.5
    assert float(env["SOUNDWATCH_THRESHOLD"]) == 2.0
    assert env["SOUNDWATCH_CLIP_ID"] == "7"


def test_command_gets_the_clip_in_its_environment(tmp_path):
    out = tmp_path / "alerts.jsonl"
    script = ("import json, os, sys; open(sys.argv[1], 'a').write(json.dumps({k: v for k, v in "
              "os.environ.items() if k.startswith('SOUNDWATCH_')}) + '\\n')")
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {shlex.quote(str(out))}"
    alerter = Alerter(command=command)
    alerter.submit(RECORD)
    alerter.submit({**RECORD, "decision": 0})  # not an anomaly: no alert
    alerter.submit({**RECORD, "id": 8, "score": 4.0})
    alerter.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["SOUNDWATCH_CLIP_ID"] for line in lines] == ["7", "8"]
    assert lines[0]["SOUNDWATCH_PATH"] == "/data/a b.wav" and lines[1]["SOUNDWATCH_SCORE"] == "4.0"
    assert alerter.sent == 2 and alerter.failed == 0


def test_failing_command_is_counted_not_raised(caplog):
    alerter = Alerter(command="exit 3")
    alerter.submit(RECORD)
    alerter.close()
    assert alerter.failed == 1 and "exited 3" in caplog.text


def test_webhook_posts_json(webhook_server):
    url, got = webhook_server
    alerter = Alerter(webhook=url)
    alerter.submit(RECORD)
    alerter.close()
    assert len(got) == 1 and got[0]["event"] == "anomaly" and got[0]["id"] == 7
    assert got[0]["score"] == 3.25 and alerter.sent == 1


def test_unreachable_webhook_is_logged(caplog):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    alerter = Alerter(webhook=f"http://127.0.0.1:{port}/", timeout=2)
    alerter.submit(RECORD)
    alerter.close()
    assert alerter.failed == 1 and "webhook" in caplog.text


def test_bad_webhook_url():
    with pytest.raises(ConfigError, match="--webhook"):
        Alerter(webhook="ftp://example")
    assert not Alerter().enabled


def _clip(machine="fan", decision=0, status="ok"):
    return {"machine": machine, "decision": decision, "status": status, "score": 1.0}


def test_rule_k_of_n_with_cooldown():
    from soundwatch.monitor.alerts import AlertRule

    now = [0.0]
    rule = AlertRule(2, 3, cooldown=600, clock=lambda: now[0])
    # 1 0 0 1: never 2 anomalies among 3 clips
    assert [rule.observe(_clip(decision=d)) for d in (1, 0, 0, 1)] == [None] * 4
    fired = rule.observe(_clip(decision=1))  # window 0 1 1
    assert fired == {"anomalies": 2, "window": 3, "k": 2, "n": 3}
    now[0] = 599.0  # in the cool-down: no second alert, counted as suppressed
    assert rule.observe(_clip(decision=1)) is None and rule.suppressed == 1
    # another machine has its own window and cool-down
    assert rule.observe(_clip("pump", 1)) is None
    assert rule.observe(_clip("pump", 1)) is not None
    now[0] = 600.0
    assert rule.observe(_clip(decision=1)) is not None
    # a normal clip never fires, even with the window full of anomalies
    assert rule.observe(_clip(decision=0)) is None


def test_rule_ignores_sensor_faults_and_errors():
    from soundwatch.monitor.alerts import AlertRule

    rule = AlertRule(2, 2)
    assert rule.observe(_clip(decision=1)) is None
    # a sensor fault (even flagged) neither counts nor pushes the anomaly out
    assert rule.observe(_clip(decision=1, status="sensor")) is None
    assert rule.observe({"machine": "fan", "status": "error", "decision": None}) is None
    assert rule.observe(_clip(decision=1)) is not None
    clips = [_clip(decision=1), _clip(decision=1, status="sensor"), _clip(decision=0)]
    assert not rule.holds(clips) and rule.holds(clips[:1] + [_clip(decision=1)])


def test_rule_checks_its_numbers():
    from soundwatch.monitor.alerts import AlertRule

    for k, n, cool in ((0, 1, 0), (3, 2, 0), (1, 0, 0), (1, 1, -1)):
        with pytest.raises(ConfigError):
            AlertRule(k, n, cool)
    assert AlertRule().describe() == "every anomalous clip"
    assert AlertRule(3, 5, 600).describe() == (
        "3 anomalous of the last 5 scored clips, then at most one alert per 600 s")


def test_alerter_sends_only_when_the_rule_fires(tmp_path):
    from soundwatch.monitor.alerts import AlertRule

    out = tmp_path / "alerts.txt"
    cmd = f"{shlex.quote(sys.executable)} -c \"import os; open({str(out)!r}, 'a').write(" \
          "os.environ['SOUNDWATCH_WINDOW_ANOMALIES'] + '/' + os.environ['SOUNDWATCH_WINDOW'] " \
          "+ chr(10))\""
    alerter = Alerter(command=cmd, rule=AlertRule(2, 3, cooldown=3600))
    for decision in (1, 0, 1, 1, 1):
        alerter.submit({**RECORD, "decision": decision})
    alerter.close()
    assert out.read_text().splitlines() == ["2/3"]  # the second alert is in the cool-down
    assert alerter.sent == 1 and alerter.rule.suppressed == 2
