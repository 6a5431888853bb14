"""The CLI under signals, concurrent writers and kills: exit codes, one-line messages, locks,
exact resume, no orphan workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

SOUNDWATCH = [sys.executable, "-m", "soundwatch"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reliability") / "data"
    subprocess.run([*SOUNDWATCH, "synth", "machines", str(root), "--machines", "fan",
                    "--train-source", "6", "--train-target", "1", "--test-per-group", "2",
                    "--seconds", "1", "--workers", "1", "--quiet"], check=True, env=ENV)
    return root


def _train(data: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [*SOUNDWATCH, "train", str(data), "-d", "ae", "--epochs", str(epochs), "--no-cache",
            "--device", "cpu", "--seed", "0", "-p", "batch_size=32", "--out", str(out), *extra]


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _last_checkpoint(run: Path):
    return lambda: any((run / "checkpoints").rglob("last.ckpt"))


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "detector" / "fan" / "weights.pt", map_location="cpu",
                      weights_only=False)


def _flat(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _flat(value, f"{prefix}/{key}")


def _cli(*args) -> int:
    """Run the console entry point in this process (no start-up cost); its exit code."""
    from soundwatch.cli import main

    argv = sys.argv
    sys.argv = ["soundwatch", *map(str, args)]
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return 0


def _scores(run: Path, out: Path) -> pd.Series:
    assert _cli("score", run, "--out", out) == 0
    return pd.read_csv(out / "scores.csv").set_index("path")["score"]


def test_a_second_train_into_a_locked_run_folder_fails_at_once(data, tmp_path):
    from soundwatch.config import RunConfig
    from soundwatch.runs import Run

    run = tmp_path / "run"
    holder = Run.create(RunConfig("ae", data=str(data)), run)  # this process writes there
    second = subprocess.run(_train(data, run, 1, "--resume"), env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run}: "), second.stderr
    assert f"another soundwatch command is writing into this run folder (process {os.getpid()})" \
        in lines[0]
    holder.close()
    assert not (run / "checkpoints").exists()


@pytest.mark.slow
def test_sigterm_then_resume_gives_the_uninterrupted_result(data, tmp_path):
    epochs = 10
    run = tmp_path / "run"
    first = subprocess.Popen(_train(data, run, epochs), env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    _wait_for(_last_checkpoint(run), first)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGTERM)") and "checkpoint" in last, err
    assert not (run / "detector" / "fan" / "config.json").exists()
    assert any((run / "checkpoints").rglob("last.ckpt"))  # kept for --resume

    assert _cli(*_train(data, run, epochs, "--resume")[3:]) == 0
    fresh = tmp_path / "fresh"
    assert _cli(*_train(data, fresh, epochs)[3:]) == 0

    a, b = dict(_flat(_weights(run))), dict(_flat(_weights(fresh)))
    assert a.keys() == b.keys() and a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    pd.testing.assert_series_equal(_scores(run, tmp_path / "s1"), _scores(fresh, tmp_path / "s2"))
    log = pd.read_csv(run / "train_log" / "fan.csv")
    assert list(log["epoch"]) == list(range(epochs))


@pytest.mark.slow
def test_sigint_during_training_exits_130_with_one_line(data, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_train(data, run, 200), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(_last_checkpoint(run), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted (SIGINT)")
    assert any((run / "checkpoints").rglob("last.ckpt"))


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_synth_leaves_no_worker_writing(tmp_path, signum):
    out = tmp_path / "synth"
    proc = subprocess.Popen(
        [*SOUNDWATCH, "synth", "machines", str(out), "--machines", "fan,pump", "--train-source",
         "60", "--test-per-group", "6", "--seconds", "2", "--workers", "2", "--quiet"],
        env=ENV, start_new_session=True,  # its own process group: the workers join it
        stderr=subprocess.PIPE, text=True,
    )
    _wait_for(lambda: len(list(out.rglob("*.wav"))) >= 4, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert proc.returncode == 143, err
        assert err.strip().splitlines() == ["interrupted (SIGTERM)"], err
    deadline = time.monotonic() + 10
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_members(proc.pid) == [], "worker processes outlived the killed parent"
    count = len(list(out.rglob("*.wav")))
    time.sleep(1.0)
    assert len(list(out.rglob("*.wav"))) == count  # nobody writes any more
