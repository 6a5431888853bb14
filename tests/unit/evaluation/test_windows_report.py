"""A long recording scored in windows gets a report: timeline, events, a player per event."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundwatch.errors import EvaluationError
from soundwatch.evaluation.evaluate import evaluate_run
from soundwatch.evaluation.windows_report import find_windowed_scoring
from soundwatch.scores import SCORE_COLUMNS, write_scores_table
from soundwatch.selfcheck import self_check

SR = 16000


@pytest.fixture
def windowed_run(tmp_path: Path) -> Path:
    """A run whose newest scoring is a 20 s recording in 2 s windows with two events."""
    import pandas as pd

    wav = tmp_path / "line 3" / "pump_night.wav"
    wav.parent.mkdir()
    rng = np.random.default_rng(0)
    sf.write(wav, (0.1 * rng.standard_normal(SR * 20)).astype(np.float32), SR)
    run = tmp_path / "run"
    folder = run / "scores" / "pump_night-20260101"
    folder.mkdir(parents=True)
    starts = np.arange(0, 19, 1.0)
    scores = np.where((starts >= 4) & (starts < 7), 3.0, 0.2)
    scores = np.where((starts >= 14) & (starts < 15), 2.0, scores)
    threshold = 1.0
    rows = ["start_s,end_s,score,threshold,decision,percentile"]
    for s, v in zip(starts, scores, strict=True):
        rows.append(f"{s:g},{s + 2:g},{float(v)!r},{threshold!r},{int(v > threshold)},"
                    f"{100.0 if v > threshold else 40.0}")
    (folder / "pump_night_windows.csv").write_text("\n".join(rows) + "\n")
    events = [{"start_s": 4.0, "end_s": 8.0, "peak_s": 5.0, "peak_score": 3.0, "windows": 3,
               "duration_s": 4.0},
              {"start_s": 14.0, "end_s": 16.0, "peak_s": 14.0, "peak_score": 2.0, "windows": 1,
               "duration_s": 2.0}]
    (folder / "pump_night_events.json").write_text(json.dumps({
        "file": str(wav), "machine": "pump", "window_s": 2.0, "hop_s": 1.0,
        "threshold": threshold, "policy": "gamma", "windows": len(starts),
        "flagged_windows": int((scores > threshold).sum()), "events": events}))
    train = pd.DataFrame({"path": [f"/t/{i}.wav" for i in range(40)], "machine": "pump",
                          "section": np.nan, "domain": np.nan, "split": "train", "label": 0.0,
                          "score": np.linspace(0, 0.9, 40)}, columns=SCORE_COLUMNS)
    write_scores_table(train, run / "scores" / "train_scores.csv")
    (run / "config.yaml").write_text("detector: knn-frames\n")
    check = self_check(np.linspace(0, 0.9, 40), threshold)
    (run / "run.json").write_text(json.dumps({
        "detector": "knn-frames",
        "machines": {"pump": {"train_clips": 40, "self_check": check.to_dict()}},
        "scorings": {"pump_night-20260101": {"kind": "windows", "folder": str(folder),
                                             "finished": True}},
    }))
    return run


def test_cli_evaluate_reports_the_newest_long_recording(windowed_run, monkeypatch, capsys):
    from soundwatch.cli import main

    monkeypatch.setattr(sys, "argv", ["soundwatch", "evaluate", str(windowed_run)])
    monkeypatch.setenv("COLUMNS", "400")
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert "no metrics" in out and "report.html" in out
    folder = windowed_run / "scores" / "pump_night-20260101"
    page = (folder / "report.html").read_text()
    assert "2 anomalous event(s) in 1 long recording(s)" in page
    assert "cut into 2 s windows every 1 s (19 windows)" in page and "4 of 19 windows did" in page
    assert '<svg class="timeline"' in page and page.count("<title>event ") == 2
    # one player per event: the event plus a second each side, embedded
    uris = re.findall(r'src="data:audio/[a-z]+;base64,([^"]+)"', page)
    assert len(uris) == 2
    first, sr = sf.read(io.BytesIO(base64.b64decode(uris[0])))
    assert abs(len(first) / sr - 6.0) < 0.2  # 4-8 s, padded to 3-9 s
    assert "4.0 s" in page and "8.0 s" in page and "above all 40" in page
    assert "pump_night.wav" in page
    # self-check shown; window table folded in the appendix
    assert "normal training clips" in page and "false alarms expected" in page
    appendix = page[page.index('<h2 id="details">'):]
    assert "Windows of pump_night.wav" in appendix and "<details>" in appendix


def test_windowed_scoring_by_name_and_evaluate_run_says_what_it_is(windowed_run):
    found = find_windowed_scoring(windowed_run, "pump_night-20260101")
    assert found == (windowed_run, windowed_run / "scores" / "pump_night-20260101")
    assert find_windowed_scoring(found[1]) == found  # the scoring folder alone
    with pytest.raises(EvaluationError, match="long recording scored in windows"):
        evaluate_run(windowed_run, scores="pump_night-20260101")
