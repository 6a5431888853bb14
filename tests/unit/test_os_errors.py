"""Operating-system errors on output, run and cache paths: one line naming the path, exit 2."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from helpers.cli import cli_error as cli
from helpers.cli import one_error_line


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from soundwatch.pipeline import train
    from soundwatch.synth import synth_machines

    root = tmp_path_factory.mktemp("oserr")
    data = synth_machines(root / "data", machines="fan", train_source=6, train_target=1,
                          test_per_group=2, seconds=1.0, seed=0, workers=1)
    train(data, "mahalanobis", out=root / "run")
    return root / "run"


def test_score_out_naming_a_file(trained, tmp_path, monkeypatch, capsys):
    target = tmp_path / "a-file"
    target.write_text("x")
    code, err = cli(monkeypatch, capsys, "score", trained, "--out", target)
    assert code == 2 and str(target) in one_error_line(err)


def test_score_out_under_a_file(trained, tmp_path, monkeypatch, capsys):
    target = tmp_path / "a-file"
    target.write_text("x")
    code, err = cli(monkeypatch, capsys, "score", trained, "--out", target / "sub")
    assert code == 2 and str(target) in one_error_line(err)


def test_render_into_a_path_under_a_file(trained, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    clip = next((Path(trained).parent / "data").rglob("*.wav"))
    code, err = cli(monkeypatch, capsys, "render", clip, blocker / "x.png")
    line = one_error_line(err)
    assert code == 2 and line.startswith(f"error: {blocker}: ") and "not a folder" in line


@pytest.mark.parametrize("sub", ["", "cache"], ids=["file", "under-a-file"])
def test_cache_dir_a_file(trained, tmp_path, monkeypatch, capsys, sub):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cache = blocker / sub if sub else blocker
    data = Path(trained).parent / "data"
    code, err = cli(monkeypatch, capsys, "train", data, "-d", "mahalanobis", "--cache-dir",
                    cache, "--out", tmp_path / "run")
    line = one_error_line(err)
    assert code == 2 and str(blocker) in line and "cache" in line


def test_run_folder_under_a_file(trained, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    data = Path(trained).parent / "data"
    code, err = cli(monkeypatch, capsys, "train", data, "-d", "mahalanobis", "--no-cache",
                    "--out", blocker / "run")
    assert code == 2 and str(blocker) in one_error_line(err)


def test_read_only_run_folder_fails_before_scoring(trained, monkeypatch, capsys):
    """Tests run as root, for whom chmod does not forbid writing: the OS refusal is simulated."""
    import soundwatch.runs as runs

    real_open = runs.os.open
    scored = []

    def refuse(path, *args, **kwargs):
        if str(path).endswith(runs.LOCK_NAME):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(runs.os, "open", refuse)
    from soundwatch.detectors.base import Detector

    monkeypatch.setattr(Detector, "score", lambda *a, **k: scored.append(1))
    code, err = cli(monkeypatch, capsys, "score", trained)
    line = one_error_line(err)
    assert code == 2 and str(trained) in line and "permission denied" in line.lower()
    assert not scored  # refused before any scoring work


def test_full_disk_names_the_file(trained, tmp_path, monkeypatch, capsys):
    import soundwatch.atomic as atomic

    real = atomic.os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # no file name, as write() gives

    monkeypatch.setattr(atomic.os, "fsync", full)
    code, err = cli(monkeypatch, capsys, "score", trained, "--out", tmp_path / "out")
    monkeypatch.setattr(atomic.os, "fsync", real)
    line = one_error_line(err)
    assert code == 2 and "no space left on device" in line
    # the first file written (run.json or an output) is named
    assert line.startswith((f"error: {trained}", f"error: {tmp_path / 'out'}")), line
    assert not [p for p in tmp_path.rglob(".*tmp*")], "temporary files left behind"


def test_checkpoint_writer_reports_a_full_disk_as_enospc(tmp_path, monkeypatch):
    import soundwatch.atomic as atomic
    from soundwatch.training.callbacks import AtomicCheckpointIO

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError) as info:
        AtomicCheckpointIO().save_checkpoint({"x": 1}, tmp_path / "last.ckpt")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []
