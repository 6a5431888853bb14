"""The folder watcher in-process: completion, errors, resume without re-scoring."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from monitor_helpers import write_clip

from soundwatch.errors import ConfigError, DetectorError
from soundwatch.monitor.history import History
from soundwatch.monitor.watch import UNKNOWN_MACHINE, FolderWatcher, is_candidate


@pytest.fixture
def history(tmp_path):
    with History(tmp_path / "h.sqlite") as h:
        yield h


def settle_all(watcher, rounds=3):
    """Step with a clock far apart so every stable file counts as complete."""
    now = time.monotonic()
    for i in range(rounds):
        watcher.step(now + 10 * i)


def test_candidates():
    assert is_candidate("a/b.wav") and is_candidate("x.FLAC")
    assert not is_candidate(".a.wav") and not is_candidate("a.wav.tmp")
    assert not is_candidate("notes.txt")


def test_scores_existing_files_and_records_errors(scorer, history, tmp_path):
    folder = tmp_path / "in"
    write_clip(folder / "fan" / "quiet.wav", 0.1, seed=50)
    write_clip(folder / "fan" / "loud.wav", 0.9, seed=51)
    write_clip(folder / "pump_0001.wav", 0.1, seed=52)
    (folder / "fan" / "text.wav").write_text("not audio at all\n" * 50)
    (folder / "fan" / "empty.wav").write_bytes(b"")
    write_clip(folder / "mystery.wav", 0.1, seed=53)  # no machine in its path
    (folder / "readme.txt").write_text("ignored")
    seen = []
    watcher = FolderWatcher(scorer, history, folder, settle=1.0, on_record=seen.append)
    watcher.scan()
    settle_all(watcher)
    by_name = {r["name"]: r for r in seen}
    assert sorted(by_name) == ["empty.wav", "loud.wav", "mystery.wav", "pump_0001.wav",
                               "quiet.wav", "text.wav"]
    assert by_name["quiet.wav"]["machine"] == "fan"
    assert by_name["pump_0001.wav"]["machine"] == "pump"
    assert by_name["loud.wav"]["decision"] == 1 and by_name["quiet.wav"]["decision"] == 0
    assert "not audio" in by_name["text.wav"]["error"]
    assert "empty" in by_name["empty.wav"]["error"]
    assert by_name["mystery.wav"]["machine"] == UNKNOWN_MACHINE
    assert "machine type" in by_name["mystery.wav"]["error"]
    assert watcher.scored == 3 and watcher.errors == 3
    # the verdict is the decisions module's, not the watcher's own
    from soundwatch.run_decisions import load_deciders

    decider = load_deciders(scorer.machines["fan"].run)["fan"]
    loud = by_name["loud.wav"]
    assert loud["threshold"] == pytest.approx(decider.threshold)
    assert loud["percentile"] == pytest.approx(decider.percentile([loud["score"]])[0])


def test_restart_does_not_rescore(scorer, history, tmp_path):
    folder = tmp_path / "in"
    for i in range(3):
        write_clip(folder / "fan" / f"c{i}.wav", 0.1, seed=60 + i)
    first = FolderWatcher(scorer, history, folder)
    first.scan()
    settle_all(first)
    assert first.scored == 3
    again = FolderWatcher(scorer, history, folder)
    again.scan()
    settle_all(again)
    assert again.scored == 0 and again.skipped == 3
    # the same path rewritten with other content is a new clip
    write_clip(folder / "fan" / "c1.wav", 0.1, seed=99)
    again.scan()
    settle_all(again)
    assert again.scored == 1 and history.count() == 4


def test_growing_file_waits_until_stable(scorer, history, tmp_path):
    folder = tmp_path / "in"
    full = write_clip(tmp_path / "src.wav", 0.1, seconds=1.0, seed=70).read_bytes()
    target = folder / "fan" / "growing.wav"
    target.parent.mkdir(parents=True)
    target.write_bytes(full[: len(full) // 3])  # header says more data than is there
    watcher = FolderWatcher(scorer, history, folder, settle=1.0)
    watcher.scan()
    now = time.monotonic()
    watcher.step(now)
    watcher.step(now + 0.5)  # unchanged for 0.5 s only: not complete yet
    assert history.count() == 0
    with open(target, "ab") as handle:
        handle.write(full[len(full) // 3:])
    watcher.notice(target)
    watcher.step(now + 0.9)  # grew: the clock restarts
    watcher.step(now + 1.5)
    assert history.count() == 0
    watcher.step(now + 2.0)
    rows = history.history("fan")
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["seconds"] == 1.0


def test_deleted_before_complete_is_dropped(scorer, history, tmp_path):
    folder = tmp_path / "in"
    path = write_clip(folder / "fan" / "gone.wav")
    watcher = FolderWatcher(scorer, history, folder)
    watcher.scan()
    watcher.step(0.0)
    os.unlink(path)
    watcher.step(10.0)
    assert history.count() == 0 and not watcher.pending


def test_live_watch_with_events(scorer, history, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    seen = []
    watcher = FolderWatcher(scorer, history, folder, machine="pump", settle=0.3, poll=0.05,
                            rescan=0, on_record=seen.append)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)
        src = write_clip(tmp_path / "x.wav", 0.1, seed=80)
        os.replace(src, folder / "x.wav")  # an atomic move in: a watchdog event
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert [r["name"] for r in seen] == ["x.wav"] and seen[0]["machine"] == "pump"


def test_bad_arguments(scorer, history, tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        FolderWatcher(scorer, history, tmp_path / "missing")
    with pytest.raises(DetectorError, match="unknown machine"):
        FolderWatcher(scorer, history, tmp_path, machine="valve")
    assert np.isfinite(scorer.score_file("fan", write_clip(tmp_path / "ok.wav")).score)
