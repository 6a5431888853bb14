"""Run folders damaged on disk are refused with one line; changed audio is scored again;
file names with any bytes go through train, scores and score."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import cli_error as cli
from helpers.cli import one_error_line as error_line


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from soundwatch.synth import synth_machines

    root = tmp_path_factory.mktemp("corrupt") / "data"
    return synth_machines(root, machines="fan,pump", train_source=6, train_target=1,
                          test_per_group=2, seconds=1.0, seed=0, workers=1)


@pytest.fixture
def run(data, tmp_path) -> Path:
    from soundwatch.pipeline import train

    train(data, "mahalanobis", out=tmp_path / "run")
    return tmp_path / "run"


def test_a_deleted_detector_config_is_named_not_skipped(run, monkeypatch, capsys):
    victim = run / "detector" / "pump" / "config.json"
    victim.unlink()
    code, err = cli(monkeypatch, capsys, "score", run)
    assert code == 2
    line = error_line(err)
    assert str(victim) in line and "pump" in line


def test_a_deleted_detector_folder_is_named(run, monkeypatch, capsys):
    shutil.rmtree(run / "detector" / "fan")
    code, err = cli(monkeypatch, capsys, "score", run)
    assert code == 2 and str(run / "detector" / "fan") in error_line(err)


def test_a_scores_table_cut_mid_row_is_refused(run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "scored"
    assert cli(monkeypatch, capsys, "score", run, "--out", out)[0] == 0
    table = out / "scores.csv"
    data = table.read_bytes()
    table.write_bytes(data[: len(data) - 7])  # the copy stopped in the last row
    from soundwatch.errors import SoundwatchError
    from soundwatch.runs import Run
    from soundwatch.scores import read_scores_table

    with pytest.raises(SoundwatchError, match="cut mid-row"):
        read_scores_table(table)
    with pytest.raises(SoundwatchError, match="changed or cut"):
        Run.open(run).check_output(table)
    code, err = cli(monkeypatch, capsys, "evaluate", run, out)
    assert code == 2 and str(table) in error_line(err)


def test_a_scores_table_cut_at_a_row_boundary_is_caught_by_its_record(run, tmp_path,
                                                                      monkeypatch, capsys):
    from soundwatch.errors import SoundwatchError
    from soundwatch.runs import Run

    out = tmp_path / "scored"
    assert cli(monkeypatch, capsys, "score", run, "--out", out)[0] == 0
    table = out / "scores.csv"
    lines = table.read_bytes().splitlines(keepends=True)
    table.write_bytes(b"".join(lines[:-2]))  # whole rows lost: still a valid CSV
    with pytest.raises(SoundwatchError, match="recorded"):
        Run.open(run).check_output(table)


def test_changed_audio_at_the_same_path_is_scored_again(run, data, tmp_path, monkeypatch,
                                                         capsys):
    out = tmp_path / "scored"
    assert cli(monkeypatch, capsys, "score", run, "--out", out)[0] == 0
    before = pd.read_csv(out / "scores.csv").set_index("path")["score"]
    clip = Path(sorted(before.index)[0])
    stat = clip.stat()
    x, sr = sf.read(clip, dtype="int16")
    louder = np.clip(x.astype(np.int32) * 3 + 500, -32768, 32767).astype(np.int16)
    sf.write(clip, louder, sr, subtype="PCM_16")
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    assert clip.stat().st_size == stat.st_size and clip.stat().st_mtime_ns == stat.st_mtime_ns
    try:
        assert cli(monkeypatch, capsys, "score", run, "--out", out)[0] == 0
        after = pd.read_csv(out / "scores.csv").set_index("path")["score"]
        assert after[str(clip)] != before[str(clip)]
        fresh = tmp_path / "fresh"
        assert cli(monkeypatch, capsys, "score", run, "--out", fresh)[0] == 0
        pd.testing.assert_series_equal(
            after.sort_index(),
            pd.read_csv(fresh / "scores.csv").set_index("path")["score"].sort_index())
    finally:
        sf.write(clip, x, sr, subtype="PCM_16")  # the module's data is shared


def test_non_utf8_names_go_through_train_and_score(data, tmp_path, monkeypatch, capsys):
    root = os.fsencode(tmp_path / "bytes")
    shutil.copytree(os.fsencode(data), root)
    os.rename(root + b"/fan", root + b"/f\xffan")
    for split in (b"train", b"test"):
        folder = root + b"/f\xffan/" + split
        first = sorted(os.listdir(folder))[0]
        os.rename(folder + b"/" + first, folder + b"/" + first[:-4] + b"\xfe.wav")
    data_dir, run = os.fsdecode(root), tmp_path / "run"
    code, err = cli(monkeypatch, capsys, "train", data_dir, "-d", "mahalanobis", "--no-cache",
                    "--out", run)
    assert code == 0, err
    train_scores = pd.read_csv(run / "scores" / "train_scores.csv",
                               encoding_errors="surrogateescape")
    assert any("\udcfe" in p for p in train_scores["path"])
    out = tmp_path / "scored"
    code, err = cli(monkeypatch, capsys, "score", run, "--out", out)
    assert code == 0, err
    from soundwatch.scores import read_scores_table

    table = read_scores_table(out / "scores.csv")
    assert "f\udcffan" in set(table["machine"])
    assert all(Path(p).is_file() for p in table["path"])  # the names round-trip to the files


def test_hostile_audio_is_skipped_with_skip_bad(data, tmp_path, monkeypatch, capsys):
    import json
    import struct

    root = tmp_path / "data"
    shutil.copytree(data, root)
    train_dir = next(root.rglob("train"))
    huge = train_dir / "section_00_source_train_normal_9990_huge.wav"
    x = np.zeros(16000, np.float32)
    x[10] = 1e30  # finite, passes a NaN/Inf check, overflows the features
    sf.write(huge, x, 16000, subtype="FLOAT")
    one_hz = train_dir / "section_00_source_train_normal_9991_onehz.wav"
    payload = np.zeros(32000, np.int16).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload
    one_hz.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    noise = train_dir / "section_00_source_train_normal_9992_noise.wav"
    noise.write_bytes(os.urandom(3000))

    run = tmp_path / "run"
    code, err = cli(monkeypatch, capsys, "train", root, "-d", "mahalanobis", "--no-cache",
                    "--out", run)
    assert code == 2 and error_line(err)
    code, err = cli(monkeypatch, capsys, "train", root, "-d", "mahalanobis", "--no-cache",
                    "--out", tmp_path / "run2", "--skip-bad")
    assert code == 0, err
    skipped = {Path(s["path"]).name: s["reason"]
               for s in json.loads((tmp_path / "run2" / "run.json").read_text())["skipped"]}
    assert "samples out of range" in skipped[huge.name]
    assert "sample rate 1 Hz" in skipped[one_hz.name]
    assert "not an audio file" in skipped[noise.name]


def test_a_rerun_removes_temporary_files_of_a_killed_scoring(run, tmp_path, monkeypatch,
                                                              capsys):
    out = tmp_path / "outside-the-run"
    assert cli(monkeypatch, capsys, "score", run, "--out", out)[0] == 0
    leftovers = [out / ".scores.csv.99999999.abcd1234.tmp",  # writer 99999999 is gone
                 out / "parts" / ".fan.99999999.abcd1234.tmp.csv",
                 run / "detector" / "fan" / ".state.99999999.abcd1234.tmp.npz"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    assert cli(monkeypatch, capsys, "score", run, "--out", out)[0] == 0
    assert [p for p in leftovers if p.exists()] == []
