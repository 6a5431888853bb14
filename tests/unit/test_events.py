"""merge_events: flagged windows of a long recording merged into events."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from soundwatch.events import Event, merge_events, write_events


def test_overlapping_and_touching_windows_merge_into_one_event():
    starts = [0, 1, 2, 3, 4, 5, 6, 7]
    ends = [s + 2 for s in starts]  # 2 s windows, 1 s hop: neighbours overlap
    scores = [0.1, 0.9, 2.0, 0.8, 0.1, 0.1, 0.7, 0.1]
    flags = [0, 1, 1, 1, 0, 0, 1, 0]
    events = merge_events(starts, ends, scores, flags)
    assert events == [Event(1.0, 5.0, 2.0, 2.0, 3), Event(6.0, 8.0, 6.0, 0.7, 1)]
    assert events[0].duration_s == 4.0


def test_gap_joins_nearby_events_and_no_flag_gives_none():
    starts, ends = [0, 2, 4, 6], [2, 4, 6, 8]  # touching windows, no overlap
    scores, flags = [1.0, 0.0, 3.0, 0.0], [1, 0, 1, 0]
    assert len(merge_events(starts, ends, scores, flags)) == 2
    joined = merge_events(starts, ends, scores, flags, gap=2.0)
    assert joined == [Event(0.0, 6.0, 4.0, 3.0, 2)]
    assert merge_events(starts, ends, scores, [0, 0, 0, 0]) == []


def test_write_events_csv_and_json_agree(tmp_path):
    events = [Event(1.0, 5.0, 2.0, 2.5, 3)]
    csv, js = write_events(events, tmp_path / "e.csv", tmp_path / "e.json", machine="fan")
    frame = pd.read_csv(csv)
    assert frame.to_dict("records") == [{"start_s": 1.0, "end_s": 5.0, "duration_s": 4.0,
                                         "peak_s": 2.0, "peak_score": 2.5, "windows": 3}]
    data = json.loads(js.read_text())
    assert data["machine"] == "fan"
    assert data["events"][0]["peak_score"] == pytest.approx(2.5)
