"""Security of ``soundwatch serve``: token checks, upload caps, paths, CORS, binding."""

from __future__ import annotations

import pytest
from monitor_helpers import SR  # noqa: F401  (the monitor fixtures' sample rate)

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from test_monitor_service import wav_bytes  # noqa: E402

from soundwatch.errors import ConfigError  # noqa: E402
from soundwatch.monitor import security  # noqa: E402
from soundwatch.monitor.history import History  # noqa: E402
from soundwatch.monitor.service import Service, create_app  # noqa: E402


@pytest.fixture
def service(scorer, tmp_path):
    svc = Service(scorer, History(tmp_path / "db" / "h.sqlite"), token="s3cret-token",
                  max_upload_bytes=200_000, clips_dir=tmp_path / "db" / "clips")
    yield svc
    svc.history.close()


@pytest.fixture
def client(service):
    with TestClient(create_app(service)) as c:
        yield c


AUTH = {"Authorization": "Bearer s3cret-token"}


def test_the_token_is_compared_in_constant_time(client, monkeypatch):
    calls = []
    real = security.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert client.get("/v1/machines", headers=AUTH).status_code == 200
    assert calls[-1] == (b"s3cret-token", b"s3cret-token")
    for header in ("Bearer s3cret-tokeX", "Bearer ", "Basic s3cret-token", "s3cret-token",
                   "Bearer s3cret-token-and-more", "Bearer \u00e9\u00e9".encode()):
        calls.clear()
        r = client.get("/v1/machines", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert calls, f"{header!r} was refused without the constant-time compare"
    assert client.get("/v1/machines").status_code == 401
    assert client.get("/metrics").status_code == 401


def test_uploads_are_capped_before_they_are_read_whole(client):
    big = b"\0" * 300_000
    r = client.post("/v1/machines/fan/score", content=big, headers=AUTH)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    sent = []

    def chunks():  # no Content-Length: counted while read
        for _ in range(100):
            sent.append(1)
            yield b"\0" * 10_000

    r = client.post("/v1/machines/fan/score", content=chunks(),
                    headers={**AUTH, "Content-Type": "audio/wav"})
    assert r.status_code == 413
    assert client.post("/v1/machines/fan/score", content=wav_bytes(0.1),
                       headers={**AUTH, "Content-Type": "audio/wav"}).status_code == 200


def test_no_request_path_reaches_the_file_system(client, service, tmp_path):
    before = {p for p in tmp_path.rglob("*")}
    for url in ("/static/../service.py", "/static/%2e%2e/service.py",
                "/static/..%2fservice.py", "/static/%2e%2e%2f%2e%2e%2fhistory.py",
                "/static//etc/passwd", "/static/%2fetc%2fpasswd"):
        r = client.get(url, headers=AUTH)
        assert r.status_code in (400, 404), url
        assert b"def create_app" not in r.content and b"root:" not in r.content
    for clip in ("../1", "..%2f1", "1;rm", "-1e9999"):
        assert client.get(f"/v1/clips/{clip}", headers=AUTH).status_code in (400, 404)
    assert client.get("/v1/machines/..%2f..%2fetc/history", headers=AUTH).status_code == 404
    for name in ("../../../../evil.wav", "/etc/evil.wav", "..\\..\\evil.wav",
                 "x.wav\0.sh", "<script>.wav"):
        r = client.post("/v1/machines/fan/score", headers=AUTH,
                        files={"file": (name, wav_bytes(0.1), "audio/wav")})
        assert r.status_code == 200, r.text
        shown = r.json()["name"]  # a display name (feed sends folder/name); never a path
        assert not shown.startswith("/") and ".." not in shown.split("/")
    after = {p for p in tmp_path.rglob("*")} - before
    clips = service.clips_dir.resolve()
    stray = [p for p in after if p.is_file() and clips not in p.resolve().parents
             and not p.name.startswith("h.sqlite")]
    assert not stray, stray
    assert not list(tmp_path.parent.rglob("evil.wav"))


def test_cors_is_off_by_default_and_security_headers_are_set(client):
    origin = {"Origin": "http://evil.example"}
    pre = client.options("/v1/machines/fan/score", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    assert "access-control-allow-origin" not in pre.headers
    r = client.get("/v1/machines", headers={**AUTH, **origin})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    for url in ("/", "/healthz", "/v1/machines"):
        r = client.get(url, headers=AUTH)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("192.168.1.10", False), ("10.0.0.1", False)])
def test_loopback(host, loopback):
    assert security.is_loopback(host) is loopback


def test_a_public_bind_needs_a_token_or_an_explicit_flag():
    with pytest.raises(ConfigError, match="--allow-no-token"):
        security.check_bind("0.0.0.0", None)
    security.check_bind("0.0.0.0", "tok")
    security.check_bind("0.0.0.0", None, allow_no_token=True)
    security.check_bind("127.0.0.1", None)


def test_serve_refuses_a_public_bind_without_a_token(monitor_run, capsys, monkeypatch):
    import sys

    from soundwatch.cli import main

    monkeypatch.delenv("SOUNDWATCH_TOKEN", raising=False)
    monkeypatch.setattr(sys, "argv", ["soundwatch", "serve", str(monitor_run), "--host",
                                      "0.0.0.0", "--port", "1"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--token" in lines[0] and "Traceback" not in err
