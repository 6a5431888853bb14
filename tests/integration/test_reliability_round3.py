"""Reliability round 3 (issue 28): the last red-team failures, each as it was run."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import run_argv as run_cli
from soundwatch.runs import Run

SOUNDWATCH = [sys.executable, "-m", "soundwatch"]


def one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("round3") / "data"
    subprocess.run([*SOUNDWATCH, "synth", "machines", str(root), "--machines", "fan,valve",
                    "--train-source", "6", "--train-target", "1", "--test-per-group", "2",
                    "--seconds", "1", "--workers", "1", "--quiet"], check=True)
    return root


@pytest.fixture(scope="module")
def fan_run(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("round3") / "fan-run"
    subprocess.run([*SOUNDWATCH, "train", str(data), "-d", "mahalanobis", "--no-cache",
                    "--out", str(run), "--machine", "fan"], check=True, capture_output=True)
    return run


# ------------------------------------------------------------------ 1. resume gap
def test_resume_records_the_training_scores_a_kill_left_out(data, tmp_path, capsys,
                                                            monkeypatch):
    """Killed after ``detector/fan`` is saved but before its scores are merged."""
    from soundwatch import pipeline
    from soundwatch.pipeline import executor

    out = tmp_path / "run"
    real = pipeline.record_machine

    def killed_on_fan(run, result):
        if result.machine == "fan":
            raise KeyboardInterrupt  # the process dies here
        real(run, result)

    monkeypatch.setattr(executor, "record_machine", killed_on_fan)  # the local executor's
    with pytest.raises(KeyboardInterrupt):
        pipeline.train(data, "mahalanobis", out=out)
    monkeypatch.setattr(executor, "record_machine", real)
    run = Run.open(out)
    assert run.has_detector("fan")
    if run.train_scores_path.is_file():
        assert "fan" not in set(pd.read_csv(run.train_scores_path)["machine"])

    before = {p.name: p.read_bytes() for p in (out / "detector" / "fan").iterdir()}
    code, _, err = run_cli(["train", data, "-d", "mahalanobis", "--no-cache", "--out", out,
                            "--resume"], capsys)
    assert code == 0, err
    after = {p.name: p.read_bytes() for p in (out / "detector" / "fan").iterdir()}
    assert after == before, "resume retrained a machine whose detector was saved"
    table = pd.read_csv(out / "scores" / "train_scores.csv")
    assert set(table["machine"]) == {"fan", "valve"}
    assert (table["machine"] == "fan").sum() == 7
    info = Run.open(out).info
    assert info["machines"]["fan"]["train_clips"] == 7
    assert info["finished"] is True
    assert run_cli(["score", out], capsys)[0] == 0
    code, _, err = run_cli(["evaluate", out, "--no-plots"], capsys)
    assert code == 0, err


def test_resume_repairs_a_run_from_before_the_facts_were_kept(data, tmp_path, capsys):
    """A second --resume repairs the gap too, also without ``train_parts/<m>.json``."""
    out = tmp_path / "run"
    assert run_cli(["train", data, "-d", "mahalanobis", "--no-cache", "--out", out],
                   capsys)[0] == 0
    run = Run.open(out)
    table = pd.read_csv(run.train_scores_path)
    table[table["machine"] != "fan"].to_csv(run.train_scores_path, index=False)
    run.info["machines"].pop("fan")
    run.save_info()
    (out / "scores" / "train_parts" / "fan.json").unlink()
    code, _, err = run_cli(["train", data, "-d", "mahalanobis", "--no-cache", "--out", out,
                            "--resume"], capsys)
    assert code == 0, err
    assert (pd.read_csv(run.train_scores_path)["machine"] == "fan").sum() == 7
    assert run_cli(["score", out], capsys)[0] == 0
    assert run_cli(["evaluate", out, "--no-plots"], capsys)[0] == 0


# ---------------------------------------------------------- 2. non-UTF-8 folder names
@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
def test_a_non_utf8_machine_folder_inspects_and_evaluates(data, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    odd = os.fsdecode(b"v\xffalve")
    (bad / "valve").rename(bad / odd)
    (bad / "dataset.json").unlink(missing_ok=True)
    code, out, err = run_cli(["inspect", bad], capsys)
    assert code == 0, err
    code, out, err = run_cli(["inspect", bad, "--json"], capsys)
    assert code == 0, err
    run = tmp_path / "run"
    assert run_cli(["train", bad, "-d", "mahalanobis", "--no-cache", "--out", run],
                   capsys)[0] == 0
    assert run_cli(["score", run], capsys)[0] == 0
    code, _, err = run_cli(["evaluate", run, "--no-plots"], capsys)
    assert code == 0, err
    assert not list(run.rglob("*.png")), "--no-plots drew figures"
    code, _, err = run_cli(["evaluate", run], capsys)
    assert code == 0, err
    assert list(run.rglob("*.png"))
    report = next(run.rglob("report.html")).read_bytes()
    assert b"alve" in report


# ------------------------------------------------------------ 3. FIFOs and devices
@pytest.fixture
def fifo_data(data, tmp_path) -> tuple[Path, Path]:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    root = tmp_path / "fifo"
    shutil.copytree(data, root)
    fifo = root / "fan" / "train" / "section_00_source_train_normal_0099_pipe.wav"
    os.mkfifo(fifo)
    return root, fifo


@contextlib.contextmanager
def bounded(seconds: int = 120):
    """Fail (never block) when the body hangs: SIGALRM interrupts a blocking open()."""
    def expired(signum, frame):
        raise TimeoutError("hung on a named pipe")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_fifo_in_a_data_folder_never_hangs(fifo_data, tmp_path, capsys):
    root, fifo = fifo_data
    with bounded():
        code, out, err = run_cli(["inspect", root], capsys)
    assert code == 0, err
    assert "named pipe" in out
    with bounded():
        code, _, err = run_cli(["train", root, "-d", "mahalanobis", "--no-cache",
                                "--out", tmp_path / "r1"], capsys)
    line = one_error_line(code, err)
    assert fifo.name in line and "not a regular file: a named pipe" in line
    with bounded():
        code, _, err = run_cli(["train", root, "-d", "mahalanobis", "--no-cache", "--skip-bad",
                                "--out", tmp_path / "r2"], capsys)
    assert code == 0, err
    skipped = Run.open(tmp_path / "r2").info["skipped"]
    assert [Path(s["path"]).name for s in skipped] == [fifo.name]


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_score_refuses_a_fifo_or_a_device(fan_run, fifo_data, capsys, target):
    path = fifo_data[1] if target == "fifo" else Path(target)
    if not path.exists():
        pytest.skip(f"{path} is absent")
    code, _, err = run_cli(["score", fan_run, path], capsys)
    line = one_error_line(code, err)
    assert str(path) in line
    assert "not an audio file or folder" in line and "Not a directory" not in line
    kind = "named pipe" if target == "fifo" else "character device"
    assert kind in line


# ----------------------------------------------------------------- 4. tiny window
def test_score_window_below_the_minimum_clip_length_is_refused(data, fan_run, tmp_path,
                                                                capsys):
    run = fan_run
    wav = next((data / "fan" / "test").glob("*.wav"))
    long = tmp_path / "long.wav"
    x, sr = sf.read(wav)
    sf.write(long, list(x) * 3, sr)
    code, _, err = run_cli(["score", run, long, "--window", "0.001"], capsys)
    line = one_error_line(code, err)
    assert "--window" in line and "minimum clip length" in line
    code, _, err = run_cli(["score", run, long, "--window", "0.5", "--out",
                            tmp_path / "windows"], capsys)
    assert code == 0, err


# ------------------------------------------------------------- 5. the right message
def test_a_bad_epochs_value_names_the_value_not_a_missing_parameter(data, tmp_path, capsys):
    code, _, err = run_cli(["train", data, "-d", "ae", "--epochs", "-3",
                            "--out", tmp_path / "r"], capsys)
    line = one_error_line(code, err)
    assert "--epochs" in line and "at least 1" in line and "-3" in line
    assert "has no 'epochs' parameter" not in line
    code, _, err = run_cli(["train", data, "-d", "mahalanobis", "--epochs", "3",
                            "--out", tmp_path / "r"], capsys)
    assert "has no 'epochs' parameter" in one_error_line(code, err)


def test_a_refused_temporary_file_is_reported_as_its_folder(tmp_path, monkeypatch):
    """A read-only run or cache folder: the error names the folder, not ``.x.123.tmp``."""
    from soundwatch.atomic import atomic_open, ensure_writable_dir
    from soundwatch.errors import OutputError

    def refuse(prefix="", suffix="", dir=None):
        name = os.path.join(dir, f"{prefix}abc{suffix}")
        raise OSError(errno.EROFS, "Read-only file system", name)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OSError) as caught, atomic_open(tmp_path / "run.json") as handle:
        handle.write("{}")
    assert caught.value.filename == str(tmp_path)
    with pytest.raises(OutputError) as refused:
        ensure_writable_dir(tmp_path / "cache", "feature cache folder (--cache-dir)")
    text = str(refused.value)
    assert ".tmp" not in text and "write-test" not in text
    assert "cannot write into the feature cache folder" in text and "Read-only" in text


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"),
                    reason="a read-only bind mount needs root")
def test_a_read_only_cache_folder_is_named(data, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    if subprocess.run(["mount", "--bind", cache, cache], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", cache],
                          capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        code, _, err = run_cli(["train", data, "-d", "mahalanobis", "--cache-dir", cache,
                                "--out", tmp_path / "r"], capsys)
        line = one_error_line(code, err)
        assert ".tmp" not in line and str(cache.name) in line and "Read-only" in line
    finally:
        subprocess.run(["umount", cache], capture_output=True)
