"""Exact resume: a run killed anywhere and resumed gives the weights of an uninterrupted run.

Every source of randomness is exercised (shuffling, dropout, torch/numpy global generators
in the loss and the dataset, per-item fetch counters of a dataset with ``state_dict``,
EMA); kills are real process exits (``os._exit``, as abrupt as SIGKILL: no cleanup code
runs) in a forked child process.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from helpers.training import InterruptAfter, KillAt, SelfSignal, TrainingInterrupted, toy_fit
from soundwatch.errors import Interrupted


def _same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a / "weights.pt", weights_only=True)
    wb = torch.load(b / "weights.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs"


def _history(folder: Path) -> dict:
    return json.loads((folder / "history.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("uninterrupted")
    toy_fit(folder)
    return folder


def _killed_in_a_child(folder: Path, epoch: int, batch: int | None = None) -> int:
    """Train in a forked child that dies with ``os._exit`` (no cleanup) at a point; its status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            toy_fit(folder, [KillAt(epoch, batch)])
        finally:
            os._exit(3)  # not killed: the test fails on the status
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("epoch", [0, 3])
def test_resume_after_an_exception_is_bit_identical(tmp_path, uninterrupted, epoch):
    with pytest.raises(TrainingInterrupted):
        toy_fit(tmp_path, [InterruptAfter(epoch)])
    toy_fit(tmp_path, resume=True)
    _same_weights(tmp_path, uninterrupted)
    assert _history(tmp_path) == _history(uninterrupted)


@pytest.mark.parametrize(
    "kill", [(1, 2), (4, None), (-1, None)], ids=["mid-epoch-1", "start-of-epoch-4", "after-last"]
)
def test_process_killed_anywhere_then_resumed_is_bit_identical(tmp_path, uninterrupted, kill):
    assert _killed_in_a_child(tmp_path, *kill) == 137
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    assert not (tmp_path / "weights.pt").exists()
    toy_fit(tmp_path, resume=True)
    _same_weights(tmp_path, uninterrupted)
    history = _history(tmp_path)
    assert history == _history(uninterrupted)  # rows, best epoch, dataset fetch counters
    assert history["summary"]["epochs_run"] == 6


def test_without_the_saved_state_resume_would_differ(tmp_path, uninterrupted, monkeypatch):
    """The test above can fail: skipping the restore of the random state changes weights."""
    from soundwatch.training.callbacks import ResumeState

    monkeypatch.setattr(ResumeState, "load_state_dict", lambda self, state: None)
    with pytest.raises(TrainingInterrupted):
        toy_fit(tmp_path, [InterruptAfter(2)])
    toy_fit(tmp_path, resume=True)
    wa = torch.load(tmp_path / "weights.pt", weights_only=True)
    wb = torch.load(uninterrupted / "weights.pt", weights_only=True)
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


def test_checkpoint_leftovers_of_a_killed_save_are_removed(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    dead = ckpt / ".last.ckpt.99999999.abcd1234.tmp"  # a writer killed while saving
    dead.write_bytes(b"half a checkpoint")
    toy_fit(tmp_path, epochs=1)
    assert not dead.exists()
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.ckpt", "last.ckpt"]


@pytest.fixture
def default_signal_handlers():
    """An interactive process's dispositions (a background job inherits SIGINT ignored)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_training_as_interrupted_and_keeps_the_checkpoint(
        tmp_path, signum, default_signal_handlers):
    with pytest.raises(Interrupted) as info:
        toy_fit(tmp_path, [SelfSignal(2, signum)])
    assert info.value.signum == signum
    assert info.value.exit_code == 128 + signum
    assert "last checkpoint is kept" in str(info.value)
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert saved["epoch"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_an_ignored_sigint_stays_ignored_while_training(tmp_path, default_signal_handlers):
    # e.g. a job started with nohup or `&`: training must not re-enable Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    toy_fit(tmp_path, epochs=1)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
