"""Tests of soundwatch.runs: run folder creation, run.json provenance, atomic writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

import soundwatch
from soundwatch import runs
from soundwatch.config import RunConfig
from soundwatch.detectors.loading import load_run_detector
from soundwatch.errors import ConfigError, DetectorError
from soundwatch.runs import LOCK_NAME, Run, default_run_name, git_commit, library_versions


@pytest.fixture
def cfg():
    return RunConfig("knn", {"k": 2}, data="/data", machines=["fan"], seed=5, device="cpu")


def test_create_writes_resolved_config_yaml(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    assert yaml.safe_load(run.config_path.read_text()) == cfg.to_dict()
    assert run.config() == cfg


def test_run_json_records_seed_versions_and_git(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r", command=["soundwatch", "train", "x"])
    info = json.loads(run.info_path.read_text())
    assert info["seed"] == 5
    assert info["detector"] == "knn"
    assert info["soundwatch_version"] == soundwatch.__version__
    assert info["command"] == ["soundwatch", "train", "x"]
    assert info["libraries"]["numpy"] == np.__version__
    for name in ("torch", "scikit-learn", "soundfile", "lightning"):
        assert name in info["libraries"]
    assert "git_commit" in info
    assert info["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", info["git_commit"])
    assert info["steps"] == {} and info["wall_times"] == {} and info["skipped"] == []
    dt.datetime.fromisoformat(info["created"])


def test_default_folder_is_detector_and_timestamp(tmp_path, cfg):
    run = Run.create(cfg, runs_dir=tmp_path / "runs")
    assert run.root.parent == tmp_path / "runs"
    assert re.fullmatch(r"knn-\d{8}-\d{6}", run.root.name)
    assert default_run_name("ae", dt.datetime(2024, 1, 2, 3, 4, 5)) == "ae-20240102-030405"


def test_paths_follow_the_documented_layout(tmp_path, cfg):
    run = Run(tmp_path)
    assert run.detector_dir("fan") == tmp_path / "detector" / "fan"
    assert run.train_log_path("fan") == tmp_path / "train_log" / "fan.csv"
    assert run.scores_path == tmp_path / "scores" / "scores.csv"
    assert run.train_scores_path == tmp_path / "scores" / "train_scores.csv"
    assert run.metrics_path == tmp_path / "metrics.json"
    assert run.report_path == tmp_path / "report.html"
    assert run.plots_dir == tmp_path / "plots"


def test_existing_run_needs_resume(tmp_path, cfg):
    Run.create(cfg, tmp_path / "r")
    with pytest.raises(ConfigError, match="already holds a run"):
        Run.create(cfg, tmp_path / "r")


def test_resume_keeps_run_json_and_records_it(tmp_path, cfg):
    first = Run.create(cfg, tmp_path / "r")
    first.record_step("train/fan", 1.5)
    again = Run.create(cfg.override(machines=["fan", "pump"]), tmp_path / "r", resume=True)
    assert again.info["created"] == first.info["created"]
    assert "train/fan" in again.info["steps"]
    assert len(again.info["resumed"]) == 1
    assert again.config().machines == ["fan", "pump"]


def test_resume_with_another_detector_is_refused(tmp_path, cfg):
    Run.create(cfg, tmp_path / "r")
    with pytest.raises(ConfigError, match="cannot resume"):
        Run.create(cfg.override(detector="ae"), tmp_path / "r", resume=True)


def test_resume_with_another_channel_is_refused_and_the_channel_is_read_back(tmp_path, cfg):
    run = Run.create(cfg.override(channel="mean"), tmp_path / "r")
    assert run.channel() == "mean"
    with pytest.raises(ConfigError, match="cannot resume: run reads channel mean, asked for 2"):
        Run.create(cfg.override(channel=2), tmp_path / "r", resume=True)


def test_open_errors(tmp_path, cfg):
    with pytest.raises(ConfigError, match="no such run folder"):
        Run.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a run folder"):
        Run.open(tmp_path / "empty")
    Run.create(cfg, tmp_path / "r")
    with pytest.raises(DetectorError, match="no trained detector"):
        Run.open(tmp_path / "r")
    assert Run.open(tmp_path / "r", need_detector=False).info["seed"] == 5


def test_machines_lists_only_complete_detectors(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    (run.detector_dir("pump")).mkdir(parents=True)  # interrupted: no config.json yet
    run.detector_dir("fan").mkdir(parents=True)
    (run.detector_dir("fan") / "config.json").write_text("{}")
    assert run.machines() == ["fan"]
    assert run.has_detector("fan") and not run.has_detector("pump")
    with pytest.raises(DetectorError, match="no detector for machine 'valve'"):
        load_run_detector(run, "valve")


def test_steps_and_skipped_are_saved_at_once(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    with run.step("train/fan", clips=3) as facts:
        facts["extra"] = 1
    run.add_skipped([{"path": "/a.wav", "reason": "empty file"}], step="train/fan")
    run.add_skipped([{"path": "/a.wav", "reason": "empty file"}], step="train/fan")
    info = json.loads(run.info_path.read_text())
    step = info["steps"]["train/fan"]
    assert step["clips"] == 3 and step["extra"] == 1 and step["wall_s"] >= 0
    assert info["wall_times"] == {"train/fan": step["wall_s"]}
    assert info["skipped"] == [{"path": "/a.wav", "reason": "empty file", "step": "train/fan"}]


def test_failed_step_is_not_recorded(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    with pytest.raises(RuntimeError), run.step("train/fan"):
        raise RuntimeError("boom")
    assert "train/fan" not in json.loads(run.info_path.read_text())["steps"]


def test_run_json_write_is_atomic(tmp_path, cfg, monkeypatch):
    run = Run.create(cfg, tmp_path / "r")
    before = run.info_path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    run.info["steps"]["x"] = {"wall_s": 1}
    with pytest.raises(OSError, match="disk full"):
        run.save_info()
    assert run.info_path.read_bytes() == before
    names = sorted(p.name for p in run.root.iterdir() if p.name != LOCK_NAME)
    assert names == ["config.yaml", "run.json"]


def test_library_versions_do_not_import_torch():
    code = ("import sys; from soundwatch.runs import library_versions; v = library_versions(); "
            "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules; print(v['numpy'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == np.__version__
    assert library_versions(["no-such-dist-xyz"]) == {"no-such-dist-xyz": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_of_a_tracked_file(tmp_path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, env=env)

    git("init", "-q")
    tracked = tmp_path / "mod.py"
    tracked.write_text("x = 1\n")
    assert git_commit(tracked) is None  # not tracked, no commit yet
    git("add", "mod.py")
    git("commit", "-q", "-m", "init")
    commit = git_commit(tracked)
    assert commit is not None and re.fullmatch(r"[0-9a-f]{40}", commit)
    assert runs.git_dirty(tracked) is False
    tracked.write_text("x = 2\n")
    assert runs.git_dirty(tracked) is True
    untracked = tmp_path / "other.py"
    untracked.write_text("")
    assert git_commit(untracked) is None


def test_git_commit_outside_a_checkout_is_none(tmp_path):
    file = tmp_path / "lonely.py"
    file.write_text("")
    assert git_commit(file) is None


def test_a_second_process_cannot_write_into_a_locked_run(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    assert run.locked
    code = (
        "import sys\n"
        "from soundwatch.runs import Run\n"
        "from soundwatch.errors import ConfigError\n"
        f"run = Run.open({str(run.root)!r}, need_detector=False)\n"
        "try:\n    run.save_info()\nexcept ConfigError as exc:\n    print('LOCKED', exc)\n"
        "else:\n    print('WROTE')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOCKED" in out.stdout and "another soundwatch command" in out.stdout
    run.close()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "WROTE" in out.stdout


def test_runs_of_one_process_share_the_lock(tmp_path, cfg):
    first = Run.create(cfg, tmp_path / "r")
    again = Run.open(tmp_path / "r", need_detector=False)
    again.save_info()  # same process: no conflict
    first.close()
    assert again.locked


def test_taking_the_lock_removes_leftovers_of_killed_commands(tmp_path, cfg):
    root = tmp_path / "r"
    Run.create(cfg, root).close()
    dead = root / "scores" / ".scores.csv.99999999.abcd1234.tmp"
    dead.parent.mkdir()
    dead.write_text("half")
    live = root / f".run.json.{os.getpid()}.abcd1234.tmp"  # a writer of this process
    live.write_text("busy")
    Run.open(root, need_detector=False).save_info()
    assert not dead.exists() and live.exists()


def test_a_detector_folder_without_config_is_refused(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    (run.detector_dir("fan")).mkdir(parents=True)
    (run.detector_dir("fan") / "state.npz").write_bytes(b"x")
    with pytest.raises(DetectorError) as info:
        Run.open(run.root)
    assert str(run.detector_dir("fan") / "config.json") in str(info.value)


def test_a_recorded_machine_without_detector_is_refused(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    (run.detector_dir("pump")).mkdir(parents=True)
    (run.detector_dir("pump") / "config.json").write_text("{}")
    run.set_machine_info("fan", train_clips=3)
    with pytest.raises(DetectorError, match="run.json records"):
        Run.open(run.root)


def test_outputs_are_recorded_and_checked(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    run.scores_dir.mkdir()
    run.scores_path.write_text("a,b\n1,2\n3,4\n")
    run.save_info()
    record = run.info["outputs"]["scores/scores.csv"]
    assert record["lines"] == 3 and record["bytes"] == 12
    run.check_output(run.scores_path)  # intact
    run.scores_path.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="changed or cut"):
        Run.open(run.root, need_detector=False).check_output(run.scores_path)


def test_detector_fingerprint_follows_file_contents(tmp_path, cfg):
    run = Run.create(cfg, tmp_path / "r")
    folder = run.detector_dir("fan")
    folder.mkdir(parents=True)
    (folder / "state.npz").write_bytes(b"aaaa")
    (folder / "config.json").write_text("{}")
    before = run.detector_fingerprint("fan")
    stat = (folder / "state.npz").stat()
    (folder / "state.npz").write_bytes(b"bbbb")
    os.utime(folder / "state.npz", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run.detector_fingerprint("fan") != before
