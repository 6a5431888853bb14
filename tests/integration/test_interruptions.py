"""Killing synth or score at any point leaves no half-written file; a rerun finishes the job."""

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import soundfile as sf

from soundwatch.runs import Run

SOUNDWATCH = [sys.executable, "-m", "soundwatch"]
SYNTH = ["synth", "machines", "--machines", "fan,valve", "--train-source", "30",
         "--train-target", "3", "--test-per-group", "4", "--seconds", "2", "--workers", "1",
         "--quiet"]


def kill_when(cmd, ready, timeout=120.0):
    """Start ``cmd``, SIGKILL it once ``ready()`` is true; return whether it was killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.wait()
    return False


def visible_files(root: Path):
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_killed_synth_leaves_only_complete_files_and_rerun_matches_fresh(tmp_path):
    out, fresh = tmp_path / "killed", tmp_path / "fresh"
    killed = kill_when([*SOUNDWATCH, *SYNTH[:2], str(out), *SYNTH[2:]],
                       lambda: len(list(out.rglob("*.wav"))) >= 8)
    if killed:
        assert not (out / "dataset.json").exists()
        for wav in (p for p in visible_files(out) if p.suffix == ".wav"):
            assert sf.info(wav).frames == 2 * 16000, wav  # every visible WAV is complete
    subprocess.run([*SOUNDWATCH, *SYNTH[:2], str(out), *SYNTH[2:]], check=True)
    subprocess.run([*SOUNDWATCH, *SYNTH[:2], str(fresh), *SYNTH[2:]], check=True)
    names = [p.relative_to(out) for p in visible_files(out)]
    assert names == [p.relative_to(fresh) for p in visible_files(fresh)]
    assert all(filecmp.cmp(out / n, fresh / n, shallow=False) for n in names)
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


def test_killed_score_resumes_to_the_same_scores(tmp_path):
    data = tmp_path / "data"
    subprocess.run([*SOUNDWATCH, *SYNTH[:2], str(data), *SYNTH[2:]], check=True)
    run = tmp_path / "run"
    subprocess.run([*SOUNDWATCH, "train", str(data), "--detector", "mahalanobis", "--no-cache",
                    "--out", str(run)], check=True, capture_output=True)
    killed = kill_when([*SOUNDWATCH, "score", str(run)],
                       lambda: any((run / "scores").glob("*/parts/*.csv")))
    for csv in visible_files(run / "scores"):
        if csv.suffix == ".csv":
            pd.read_csv(csv, header=None)  # whatever is visible parses completely
    subprocess.run([*SOUNDWATCH, "score", str(run)], check=True, capture_output=True)
    finished = list((run / "scores").glob("*/scores.csv"))
    if killed:
        assert len(finished) == 1, "the rerun finishes the killed scoring's folder"
    resumed = pd.read_csv(Run.open(run).scores_path)
    subprocess.run([*SOUNDWATCH, "score", str(run), "--out", str(tmp_path / "again")],
                   check=True, capture_output=True, env={**os.environ})
    again = pd.read_csv(tmp_path / "again" / "scores.csv")
    pd.testing.assert_frame_equal(resumed, again)


def test_killed_train_resumes_from_its_last_checkpoint(tmp_path):
    data = tmp_path / "data"
    subprocess.run([*SOUNDWATCH, *SYNTH[:2], str(data), "--machines", "fan",
                    *SYNTH[4:]], check=True)
    run = tmp_path / "run"
    train = [*SOUNDWATCH, "train", str(data), "--detector", "ae", "--epochs", "40",
             "--no-cache", "--device", "cpu", "--param", "batch_size=64", "--out", str(run)]
    checkpoints = run / "checkpoints"
    killed = kill_when(train, lambda: any(checkpoints.rglob("last*.ckpt")))
    if killed:
        assert not (run / "detector" / "fan" / "config.json").exists()
        for ckpt in checkpoints.rglob("*.ckpt"):  # every visible checkpoint is complete
            import torch

            torch.load(ckpt, map_location="cpu", weights_only=False)
    done = subprocess.run([*train, "--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    log = pd.read_csv(run / "train_log" / "fan.csv")
    assert log["epoch"].max() == 39
    subprocess.run([*SOUNDWATCH, "score", str(run)], check=True, capture_output=True)
    (table,) = (run / "scores").glob("*/scores.csv")
    scores = pd.read_csv(table)["score"]
    assert scores.notna().all() and scores.std() > 0
