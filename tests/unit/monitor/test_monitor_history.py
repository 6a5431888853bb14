"""The SQLite history: records, keys, queries, atomicity and concurrent writers."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from soundwatch.errors import ConfigError
from soundwatch.monitor.history import _SCHEMA, SCHEMA_VERSION, History, iso_time, parse_since


@pytest.fixture
def history(tmp_path):
    with History(tmp_path / "sub" / "h.sqlite") as h:
        yield h


def ok(history, machine="fan", score=1.0, decision=0, ts=None, **kw):
    fields = {"score": score, "threshold": 2.0, "decision": decision, "percentile": 50.0}
    if ts is not None:
        fields["ts"] = ts
    return history.record(machine, kw.pop("source", "upload"), "ok", **fields, **kw)


def test_database_is_wal_and_versioned(history):
    conn = sqlite3.connect(history.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_sensor_status_and_schema_1_upgrade(tmp_path):
    from soundwatch.monitor.history import _SCHEMA

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # a database written by schema 1
        conn.executescript(_SCHEMA.replace("'ok', 'sensor', 'error'", "'ok', 'error'"))
        conn.execute("INSERT INTO clips (ts, machine, source, status, score, decision, "
                     "request_id) VALUES (1.0, 'fan', 'upload', 'ok', 2.5, 1, 'r1')")
        conn.execute("PRAGMA user_version=1")
    with History(path) as history:
        old = history.get(1)
        assert old["score"] == 2.5 and old["status_reason"] is None
        assert history.get_by_request_id("r1")["id"] == 1  # indexes rebuilt
        row = history.record("fan", "upload", "sensor", score=239.0, decision=1,
                             error="all samples are zero")
        assert row["status"] == "sensor" and row["status_reason"] == "all samples are zero"
        # a sensor fault is never a machine anomaly
        assert [e["id"] for e in history.events()] == [1]
        assert history.summary()["fan"]["anomalies"] == 1
        assert history.summary()["fan"]["sensor"] == 1


def test_counters_follow_inserts_deletes_and_an_upgrade(tmp_path):
    """The per-machine counters (schema 2) match a full scan, also for a version-1 file."""
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(_SCHEMA)
    conn.executemany("INSERT INTO clips (ts, machine, source, status, decision) "
                     "VALUES (?, ?, 'upload', ?, ?)",
                     [(float(i), f"m{i % 3}", "error" if i % 7 == 0 else "ok", i % 2)
                      for i in range(100)])
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with History(db) as history:

        def scanned():
            rows = history._reader().execute(
                "SELECT machine, COUNT(*), SUM(decision IS 1 AND status = 'ok'), "
                "SUM(status = 'error'), "
                "MAX(id) FROM clips GROUP BY machine").fetchall()
            return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

        def counted():
            return {m: (s["clips"], s["anomalies"], s["errors"], s["last"]["id"])
                    for m, s in history.summary().items()}

        assert counted() == scanned() and history.count() == 100
        history.record("m1", "upload", "ok", decision=1)
        history.record("m9", "upload", "error", error="bad")
        assert counted() == scanned() and history.count() == 102
        with history._write() as w:
            w.execute("DELETE FROM clips WHERE id IN (SELECT MAX(id) FROM clips "
                      "WHERE machine = 'm0') OR machine = 'm9' OR id < 10")
        assert counted() == scanned() and "m9" not in history.summary()
        page = history.history("m1", limit=5)
        older = history.history("m1", limit=5, before=page[0]["ts"])
        assert older and max(r["ts"] for r in older) < page[0]["ts"]


def test_record_and_read_back(history):
    row = ok(history, score=3.5, decision=1, name="a.wav")
    assert row["id"] == 1 and not row["duplicate"]
    got = history.get(row["id"])
    assert got["score"] == 3.5 and got["decision"] == 1 and got["name"] == "a.wav"
    assert got["time"].endswith("Z") and got["has_audio"] is False
    assert history.get(999) is None
    assert history.count() == 1 and history.count(source="watch") == 0


def test_history_since_limit_and_order(history):
    for i in range(10):
        ok(history, score=float(i), ts=1000.0 + i)
    ok(history, machine="pump", ts=1005.5)
    rows = history.history("fan", since=1004.0, limit=3)
    assert [r["score"] for r in rows] == [7.0, 8.0, 9.0]  # newest 3, oldest first
    assert [r["score"] for r in history.history("fan", since=1007.0)] == [8.0, 9.0]
    assert len(history.history("fan")) == 10


def test_events_are_anomalies_newest_first(history):
    ok(history, decision=0, ts=1.0)
    ok(history, decision=1, ts=2.0, score=5.0)
    ok(history, decision=1, ts=3.0, score=6.0, machine="pump")
    history.record("fan", "watch", "error", error="bad", path="/x.wav", ts=4.0)
    assert [e["score"] for e in history.events()] == [6.0, 5.0]
    assert [e["score"] for e in history.events(machine="fan")] == [5.0]
    assert [e["score"] for e in history.events(since=2.5)] == [6.0]


def test_summary_counts_and_last(history):
    ok(history, decision=1)
    ok(history, decision=0)
    history.record("fan", "watch", "error", error="not audio", path="/y.wav")
    summary = history.summary()
    assert summary["fan"]["clips"] == 3 and summary["fan"]["anomalies"] == 1
    assert summary["fan"]["errors"] == 1 and summary["fan"]["last"]["error"] == "not audio"


def test_file_key_recorded_once(history):
    key = {"path": "/d/a.wav", "size": 10, "mtime_ns": 5, "sha256": "ab"}
    first = ok(history, source="watch", **key)
    again = ok(history, source="watch", score=99.0, **key)
    assert again["duplicate"] and again["id"] == first["id"] and again["score"] == 1.0
    assert history.find_file(**key)["id"] == first["id"]
    changed = ok(history, source="watch", **{**key, "sha256": "cd"})
    assert not changed["duplicate"] and history.count() == 2


def test_request_id_recorded_once(history):
    first = ok(history, request_id="r1")
    again = ok(history, request_id="r1", score=7.0)
    assert again["duplicate"] and again["id"] == first["id"]
    assert history.get_by_request_id("r1")["id"] == first["id"]
    assert history.count() == 1


def test_failed_insert_leaves_nothing(history):
    with pytest.raises(sqlite3.IntegrityError):
        history.record("fan", "upload", "bogus-status")
    assert history.count() == 0
    with pytest.raises(TypeError):
        history.record("fan", "upload", "ok", no_such_column=1)


def test_prune_audio_keeps_newest(history, tmp_path):
    for i in range(5):
        ok(history, audio=str(tmp_path / f"{i}.wav"))
    gone = history.prune_audio(2)
    assert sorted(gone) == sorted(str(tmp_path / f"{i}.wav") for i in range(3))
    assert [history.audio_path(i) is not None for i in range(1, 6)] == [False] * 3 + [True] * 2
    assert history.prune_audio(2) == []


def test_concurrent_writers_and_readers(history):
    errors = []

    def write(k):
        try:
            for i in range(25):
                ok(history, score=float(k * 100 + i))
                history.history("fan", limit=5)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert history.count() == 200
    scores = sorted(r["score"] for r in history.history("fan", limit=1000))
    assert scores == sorted(float(k * 100 + i) for k in range(8) for i in range(25))


def test_second_connection_sees_committed_rows(tmp_path):
    with History(tmp_path / "h.sqlite") as a, History(tmp_path / "h.sqlite") as b:
        ok(a, score=1.0)
        assert b.count() == 1


def test_closed_history_refuses(tmp_path):
    h = History(tmp_path / "h.sqlite")
    h.close()
    with pytest.raises(ConfigError):
        ok(h)


def test_not_a_database(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="bad.sqlite"):
        History(bad)


def test_parse_since():
    assert parse_since(None) is None and parse_since("") is None
    assert parse_since("12.5") == 12.5
    assert parse_since("1970-01-01T00:01:00Z") == 60.0
    assert parse_since("1970-01-01T00:01:00") == 60.0
    assert parse_since("1970-01-01T01:01:00+01:00") == 60.0
    for bad in ("yesterday", "nan", "inf"):
        with pytest.raises(ConfigError, match="since"):
            parse_since(bad)
    assert iso_time(60.0) == "1970-01-01T00:01:00.000Z"
