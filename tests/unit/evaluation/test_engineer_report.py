"""The report an engineer reads: every clip with a player, plain words, self-check, appendix."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from soundwatch.evaluation.evaluate import evaluate_run
from soundwatch.evaluation.report import build_report
from soundwatch.evaluation.report_sections import display_names, percentile_words
from soundwatch.scores import SCORE_COLUMNS, write_scores_table
from soundwatch.selfcheck import self_check

SR = 16000


def _wav(path: Path, amp: float, seed: int, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, (amp * rng.standard_normal(int(SR * seconds))).astype(np.float32), SR)
    return path


@pytest.fixture
def unlabelled_run(tmp_path: Path) -> tuple[Path, list[str]]:
    """A run scored on MIMII-named recordings (equal names in normal/ and abnormal/), no labels."""
    data = tmp_path / "data" / "pumpA"
    paths = []
    for i, (folder, amp) in enumerate([("normal", 0.1), ("normal", 0.1), ("normal", 0.1),
                                       ("abnormal", 0.5), ("abnormal", 0.5)]):
        paths.append(str(_wav(data / folder / f"{i % 3:08d}.wav", amp, i)))
    scores = [0.2, 0.4, 0.1, 3.0, 2.5]
    table = pd.DataFrame({"path": paths, "machine": "pump", "section": np.nan,
                          "domain": np.nan, "split": "test", "label": np.nan,
                          "score": scores}, columns=SCORE_COLUMNS).assign(layout="any")
    run = tmp_path / "run"
    (run / "scores" / "new").mkdir(parents=True)
    write_scores_table(table, run / "scores" / "new" / "scores.csv")
    train_scores = np.linspace(0.0, 1.0, 8)
    train = pd.DataFrame({"path": [f"/train/pumpA_2026-01-0{i}.wav" for i in range(8)],
                          "machine": "pump", "section": np.nan, "domain": np.nan,
                          "split": "train", "label": 0.0, "score": train_scores},
                         columns=SCORE_COLUMNS)
    write_scores_table(train, run / "scores" / "train_scores.csv")
    (run / "config.yaml").write_text("detector: knn-frames\nseed: 0\n")
    check = self_check(train_scores, threshold=1.2)
    (run / "run.json").write_text(json.dumps({
        "detector": "knn-frames", "seed": 0, "wall_times": {"train/pump": 4.5},
        "machines": {"pump": {"train_clips": 8, "self_check": check.to_dict()}},
    }))
    return run, paths


def _visible(page: str) -> str:
    """The page before the folded technical appendix."""
    return page[: page.index('<h2 id="details">')]


def test_unlabelled_report_lists_every_clip_with_a_player_in_plain_words(unlabelled_run):
    run, paths = unlabelled_run
    result = evaluate_run(run, scores="new", threshold="gamma", plots=False, explain=0)
    page = (run / "scores" / "new" / "report.html").read_text()
    flagged = int(result.scores["decision"].sum())
    assert flagged == 2, "the two loud clips are above the gamma threshold of 8 training clips"
    # every clip listed, MIMII names with their folders, flagged first
    for name in ("normal/00000000.wav", "abnormal/00000000.wav", "normal/00000001.wav",
                 "abnormal/00000001.wav", "normal/00000002.wav"):
        assert f">{name}</td>" in page, name
    assert page.index(">abnormal/00000000.wav<") < page.index(">normal/00000001.wav<")
    assert page.count('<tr class="flagged">') == 2
    # one embedded player per clip, that decodes back to the clip's length
    uris = re.findall(r'<audio controls preload="none" src="data:(audio/[a-z]+);base64,'
                      r'([^"]+)"', page)
    assert len(uris) == len(paths)
    audio, sr = sf.read(io.BytesIO(base64.b64decode(uris[0][1])))
    assert sr == SR and abs(len(audio) / sr - 1.0) < 0.1
    # plain words, no jargon, no label warnings, no raw JSON
    visible = _visible(page)
    assert "90th percentile of a gamma distribution" in visible
    assert "gamma:0.9" not in visible and "section -" not in visible
    assert "above all 8" in visible
    assert "no labelled clips" not in page.lower() and "have no label" not in page
    assert "wall_times" not in page and not re.search(r"<pre>\s*\{", page)
    # self-check with numbers, and the appendix folded
    assert "Only 8 normal training clip(s)" in visible and "How far to trust" in visible
    assert "false alarms expected (out of fold)" in visible
    assert "lie above it when each is scored by a detector trained without it" in visible
    assert "n/a (a single detector)" in visible
    appendix = page[page.index('<h2 id="details">'):]
    assert appendix.startswith('<h2 id="details">Technical details</h2><details>')
    assert "knn-frames" in appendix and "4.5" in appendix  # run facts, timing
    assert repr(float(result.scores["threshold"].iloc[0])) in appendix  # the exact threshold


def test_audio_beyond_the_cap_is_linked_and_said(unlabelled_run):
    run, paths = unlabelled_run
    result = evaluate_run(run, scores="new", threshold="gamma", plots=False, report=False,
                          explain=0)
    folder = run / "scores" / "new"
    page = build_report(run, result, report_dir=folder, max_embedded_audio=2)
    assert page.count('src="data:audio/') == 2
    linked = re.findall(r'<audio controls preload="none" src="(?!data:)([^"]+)"', page)
    assert len(linked) == 3
    assert all((folder / rel).resolve().is_file() for rel in linked)
    assert "2 recording(s) are embedded" in page and "3 play from their original files" in page


def test_sensor_status_is_shown_apart_when_the_table_has_it(unlabelled_run):
    run, _ = unlabelled_run
    result = evaluate_run(run, scores="new", threshold="gamma", plots=False, report=False,
                          explain=0)
    scores = result.scores.assign(status="ok", status_reason="")
    scores.loc[2, ["status", "status_reason", "decision"]] = ["sensor", "silent", 0]
    scores.loc[1, ["status", "status_reason", "decision"]] = ["error", "truncated file", 0]
    result.scores = scores
    page = build_report(run, result, audio=False)
    assert "sensor problem: silent" in page and "not scored: truncated file" in page
    assert "1 with a sensor problem" in page and "1 could not be scored" in page
    assert page.count('<tr class="sensor">') == 2
    assert "<th>listen</th>" not in page


def test_display_names_and_percentile_words():
    names = display_names(["/d/fan/id_00/normal/00000000.wav",
                           "/d/fan/id_00/abnormal/00000000.wav"])
    assert sorted(names.values()) == ["abnormal/00000000.wav", "normal/00000000.wav"]
    assert display_names(["/d/a.wav", "/d/b.wav"]) == {"/d/a.wav": "a.wav", "/d/b.wav": "b.wav"}
    assert percentile_words(100.0, 8) == "above all 8"
    assert percentile_words(75.0, 8) == "above 6 of 8"
    assert percentile_words(0.0, 8) == "below all 8"
    assert percentile_words(97.3, 1000) == "above 97%"
    assert percentile_words(float("nan"), 8) == ""
