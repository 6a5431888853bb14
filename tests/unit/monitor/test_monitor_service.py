"""The HTTP service through FastAPI's TestClient: every endpoint, auth, bad uploads, threads."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
from monitor_helpers import SR

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")
pytest.importorskip("prometheus_client", reason="prometheus-client is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from soundwatch.monitor.history import History  # noqa: E402
from soundwatch.monitor.service import Service, create_app  # noqa: E402


def wav_bytes(amp=0.1, seconds=0.5, seed=0, subtype="PCM_16", data=None, fmt="WAV"):
    rng = np.random.default_rng(seed)
    if data is None:
        data = amp * rng.standard_normal(int(SR * seconds))
        # loud, not clipped: a clipped clip is a sensor problem, never a machine anomaly
        data = (data / max(1.0, float(np.abs(data).max()))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, data, SR, subtype=subtype, format=fmt)
    return buf.getvalue()


def make_client(scorer, tmp_path, **kwargs):
    history = History(tmp_path / "h.sqlite")
    service = Service(scorer, history, **kwargs)
    return TestClient(create_app(service)), service


@pytest.fixture
def client(scorer, tmp_path):
    client, service = make_client(scorer, tmp_path)
    with client:
        yield client
    service.history.close()


def post(client, machine="fan", content=None, **kw):
    if content is not None:
        kw["files"] = {"file": ("clip.wav", content, "audio/wav")}
    return client.post(f"/v1/machines/{machine}/score", **kw)


def assert_error(response, status, text):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"]
    assert text in body["error"], body["error"]


def test_score_multipart_body_and_raw(client, scorer):
    from soundwatch.run_decisions import load_deciders

    decider = load_deciders(scorer.machines["fan"].run)["fan"]
    quiet = post(client, content=wav_bytes(0.1, seed=1)).json()
    loud = post(client, content=wav_bytes(0.9, seed=2)).json()
    assert quiet["decision"] == 0 and loud["decision"] == 1 and loud["anomaly"] is True
    for body in (quiet, loud):
        assert body["threshold"] == pytest.approx(decider.threshold)
        assert body["percentile"] == pytest.approx(decider.percentile([body["score"]])[0])
        assert body["spectrogram"] == f"/v1/clips/{body['id']}/spectrogram.png"
    same = scorer.score_signal("fan", sf.read(io.BytesIO(wav_bytes(0.1, seed=1)),
                                              dtype="float32")[0], SR)
    assert quiet["score"] == pytest.approx(same.score)
    # an audio file as the whole body
    flac = client.post("/v1/machines/fan/score", content=wav_bytes(0.1, seed=1, fmt="FLAC",
                                                                   subtype="PCM_16"),
                       headers={"Content-Type": "audio/flac"}).json()
    assert flac["score"] == pytest.approx(quiet["score"], rel=1e-4)
    # raw PCM with a declared rate and format
    x = np.random.default_rng(3).standard_normal(SR // 2) * 0.1
    s16 = (x * 32767).astype("<i2").tobytes()
    raw = client.post("/v1/machines/fan/score?rate=16000&format=s16le", content=s16,
                      headers={"Content-Type": "application/octet-stream"})
    assert raw.status_code == 200, raw.text
    f32 = client.post("/v1/machines/fan/score?rate=16000&format=f32le",
                      content=x.astype("<f4").tobytes())
    assert f32.json()["score"] == pytest.approx(raw.json()["score"], rel=1e-3)
    stereo = np.stack([x, x * 0.5], axis=1).astype("<f4").tobytes()
    two = client.post("/v1/machines/fan/score?rate=16000&format=f32le&channels=2",
                      content=stereo)
    assert two.json()["score"] == pytest.approx(f32.json()["score"], rel=1e-5)


@pytest.mark.parametrize("name, content, status, text", [
    ("not audio", b"this is plain text, not audio at all " * 40, 422, "not audio"),
    ("empty", b"", 422, "empty"),
    ("truncated", None, 422, "truncated"),
    ("nan", None, 422, "NaN"),
    ("too short", None, 422, "too short"),
])
def test_bad_uploads_are_4xx(client, name, content, status, text):
    if name == "truncated":
        full = wav_bytes(seconds=1.0)
        content = full[: len(full) // 2]
    elif name == "nan":
        x = np.full(SR // 2, 0.1, np.float32)
        x[10] = np.nan
        content = wav_bytes(data=x, subtype="FLOAT")
    elif name == "too short":
        content = wav_bytes(seconds=0.01)
    assert_error(post(client, content=content), status, text)
    assert_error(client.post("/v1/machines/fan/score", content=content,
                             headers={"Content-Type": "audio/wav"}), status, text)
    assert client.get("/v1/machines").json()[0]["clips"] == 0  # nothing recorded


def test_bad_requests(client):
    good = wav_bytes()
    assert_error(post(client, "valve", good), 404, "unknown machine type 'valve'")
    assert_error(client.post("/v1/machines/fan/score", data={"other": "x"},
                             files={"notfile": ("a.wav", good)}), 400, "'file' field")
    assert_error(client.post("/v1/machines/fan/score?rate=16000&format=s24be",
                             content=b"\0" * 300), 400, "format")
    assert_error(client.post("/v1/machines/fan/score?rate=16000", content=b"\0" * 301),
                 400, "whole number")
    assert_error(client.post("/v1/machines/fan/score?rate=5", content=b"\0" * 300),
                 400, "rate")
    assert_error(client.post("/v1/machines/fan/score?rate=abc", content=b"\0" * 300),
                 400, "rate")
    nan = np.full(SR, np.nan, "<f4").tobytes()
    assert_error(client.post("/v1/machines/fan/score?rate=16000&format=f32le", content=nan),
                 422, "NaN")
    assert_error(client.get("/v1/machines/fan/history?since=tomorrow"), 400, "since")
    assert_error(client.get("/v1/machines/fan/history?limit=0"), 400, "limit")
    assert_error(client.get("/v1/machines/valve/history"), 404, "valve")
    assert_error(client.get("/v1/clips/12345"), 404, "no such clip")
    assert_error(client.get("/v1/clips/abc"), 400, "clip_id")
    assert_error(client.get("/no/such/page"), 404, "no such endpoint")
    assert_error(client.delete("/v1/machines"), 405, "not allowed")


def test_upload_size_limit(scorer, tmp_path):
    client, service = make_client(scorer, tmp_path, max_upload_bytes=100_000)
    with client:
        huge = wav_bytes(seconds=5.0)  # 160 kB
        assert_error(post(client, content=huge), 413, "limit")
        # no Content-Length (chunked): counted while reading
        assert_error(client.post("/v1/machines/fan/score", content=iter([huge[:60000],
                                                                        huge[60000:]]),
                                 headers={"Content-Type": "audio/wav"}), 413, "limit")
        assert post(client, content=wav_bytes(seconds=1.0)).status_code == 200
    service.history.close()


def test_history_events_machines_clip(client):
    for i, amp in enumerate([0.1, 0.1, 0.9, 0.1, 0.9]):
        assert post(client, content=wav_bytes(amp, seed=10 + i)).status_code == 200
    assert post(client, "pump", wav_bytes(0.1, seed=20)).status_code == 200
    machines = {m["machine"]: m for m in client.get("/v1/machines").json()}
    assert set(machines) == {"fan", "pump"}
    fan = machines["fan"]
    assert fan["clips"] == 5 and fan["anomalies"] == 2 and fan["state"] == "anomaly"
    assert fan["detector"] == "mahalanobis" and machines["pump"]["state"] == "normal"
    hist = client.get("/v1/machines/fan/history").json()
    assert hist["threshold"] == pytest.approx(fan["threshold"])
    assert [c["decision"] for c in hist["clips"]] == [0, 0, 1, 0, 1]
    since = hist["clips"][2]["ts"]
    later = client.get("/v1/machines/fan/history", params={"since": since}).json()["clips"]
    assert [c["id"] for c in later] == [c["id"] for c in hist["clips"][3:]]
    from soundwatch.monitor.history import iso_time

    iso = iso_time(hist["clips"][2]["ts"] + 0.002)  # ISO times carry milliseconds
    assert len(client.get(f"/v1/machines/fan/history?since={iso}").json()["clips"]) == 2
    events = client.get("/v1/events").json()["events"]
    assert [e["id"] for e in events] == [hist["clips"][4]["id"], hist["clips"][2]["id"]]
    assert client.get("/v1/events?machine=pump").json()["events"] == []
    clip = client.get(f"/v1/clips/{events[0]['id']}").json()
    assert clip["decision"] == 1 and clip["machine"] == "fan"


def test_spectrogram_and_explanation(client):
    body = post(client, content=wav_bytes(0.9, seconds=1.0, seed=5)).json()
    png = client.get(body["spectrogram"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    # a figure with axes (time in s, frequency in Hz, a dB colour bar), not a bare image
    assert Image.open(io.BytesIO(png.content)).size == (1000, 400)
    explained = client.get(body["explanation"])
    try:
        import soundwatch.explain  # noqa: F401
    except ImportError:
        assert_error(explained, 404, "explanations are not available")
    else:
        assert explained.status_code == 200, explained.text
        assert explained.headers["content-type"] == "image/png"
        assert explained.content[:8] == b"\x89PNG\r\n\x1a\n"
    # an error clip has no audio to draw
    assert_error(client.get("/v1/clips/999/explanation.png"), 404, "no such clip")


def test_kept_clips_are_pruned(scorer, tmp_path):
    client, service = make_client(scorer, tmp_path, keep_clips=3)
    with client:
        ids = [post(client, content=wav_bytes(seed=i)).json()["id"] for i in range(55)]
        kept = sorted(service.clips_dir.iterdir())
        assert len(kept) == 3 + 5  # pruned to 3 at the 50th upload, 5 uploads since
        assert client.get(f"/v1/clips/{ids[-1]}/spectrogram.png").status_code == 200
        assert_error(client.get(f"/v1/clips/{ids[0]}/spectrogram.png"), 404, "no longer kept")
        assert client.get(f"/v1/clips/{ids[0]}").json()["has_audio"] is False
    service.history.close()
    client, service = make_client(scorer, tmp_path, keep_clips=0)
    with client:
        assert post(client, content=wav_bytes()).json()["spectrogram"] is None
        assert len(list(service.clips_dir.iterdir())) == 0  # keep none: pruned at start
    service.history.close()


def test_orphan_clip_files_are_removed_at_start(scorer, tmp_path):
    client, service = make_client(scorer, tmp_path)
    with client:
        post(client, content=wav_bytes())
    service.history.close()
    orphan = service.clips_dir / "deadbeef.wav"
    orphan.write_bytes(b"left by a killed server")
    _, again = make_client(scorer, tmp_path)
    assert not orphan.exists() and len(list(again.clips_dir.iterdir())) == 1
    again.history.close()


def test_request_id_makes_retries_idempotent(client):
    content = wav_bytes(seed=7)
    first = post(client, content=content, headers={"X-Request-Id": "abc-1"}).json()
    again = post(client, content=content, headers={"X-Request-Id": "abc-1"}).json()
    assert again["duplicate"] is True and again["id"] == first["id"]
    assert client.get("/v1/machines").json()[0]["clips"] == 1


def test_token(scorer, tmp_path):
    client, service = make_client(scorer, tmp_path, token="s3cret")
    with client:
        for path in ("/v1/machines", "/v1/events", "/metrics", "/v1/machines/fan/history"):
            assert_error(client.get(path), 401, "bearer token")
            assert_error(client.get(path, headers={"Authorization": "Bearer nope"}), 401,
                         "bearer token")
            assert client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code \
                == 200
        assert_error(post(client, content=wav_bytes()), 401, "bearer token")
        ok = post(client, content=wav_bytes(), headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        # open: health, the page and its assets (they hold no data)
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200
        assert client.get("/static/app.js").status_code == 200
    service.history.close()


def test_service_endpoints(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["machines"] == 2
    post(client, content=wav_bytes(0.9, seed=3))
    post(client, content=b"garbage" * 100)
    metrics = client.get("/metrics").text
    assert 'soundwatch_clips_total{decision="1",machine="fan"} 1.0' in metrics
    assert 'soundwatch_rejected_total{reason="bad_audio"} 1.0' in metrics
    assert "soundwatch_history_clips 1.0" in metrics
    assert 'soundwatch_threshold{machine="fan"}' in metrics
    spec = client.get("/openapi.json").json()
    assert "/v1/machines/{machine}/score" in spec["paths"]
    assert "multipart/form-data" in str(spec["paths"]["/v1/machines/{machine}/score"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "https://" not in page.text and "http://" not in page.text
    for asset in ("app.js", "style.css"):
        text = client.get(f"/static/{asset}").text
        assert "https://" not in text and "http://" not in text  # nothing from the internet


def test_concurrent_uploads(client, scorer):
    contents = [wav_bytes(0.1 if i % 3 else 0.9, seed=100 + i) for i in range(24)]
    expected = [scorer.score_signal("fan", sf.read(io.BytesIO(c), dtype="float32")[0], SR).score
                for c in contents]
    barrier = threading.Barrier(8)

    def one(i):
        if i < 8:
            barrier.wait()
        return post(client, content=contents[i]).json()

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(one, range(24)))
    assert [b["score"] for b in bodies] == pytest.approx(expected)
    assert len({b["id"] for b in bodies}) == 24
    assert client.get("/v1/machines").json()[0]["clips"] == 24

