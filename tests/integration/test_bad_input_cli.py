"""The CLI on the generated corpus of bad and odd inputs: one line, exit 2, or --skip-bad."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import run_argv as run_cli
from soundwatch.runs import Run


def assert_one_line_error(code, err, path, expected):
    assert code == 2, err
    # progress lines may precede it; the error itself is exactly one line
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    assert str(path) in lines[0] or shown in lines[0]
    assert expected in lines[0]


def test_render_on_every_corpus_file(bad_corpus, tmp_path, capsys):
    for name, (path, expected) in bad_corpus.items():
        if name == "long_10min":
            continue  # loads fine (tests/unit/test_audio.py); rendering 10 min is slow here
        out_png = tmp_path / f"{name}.png"
        code, _, err = run_cli(["render", path, out_png], capsys)
        if expected is None:
            assert code == 0, (name, err)
            assert out_png.stat().st_size > 0
        else:
            assert_one_line_error(code, err, path, expected)
            assert not out_png.exists()


def test_directory_without_audio_is_one_line_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no audio here")
    code, _, err = run_cli(["inspect", tmp_path], capsys)
    assert_one_line_error(code, err, tmp_path, "no audio")


def _labelled_task(root, rng):
    """A small pink-noise-style task: train/0 normal tones, test/{0,1}."""
    for split, label, count in (("train", 0, 12), ("test", 0, 6), ("test", 1, 6)):
        folder = root / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            t = np.arange(16000) / 16000
            x = 0.2 * np.sin(2 * np.pi * (300 + 5 * i) * t) + 0.01 * rng.standard_normal(16000)
            if label:
                x += 0.2 * rng.standard_normal(16000)
            sf.write(folder / f"clip_{i:02d}.wav", x.astype(np.float32), 16000)


@pytest.fixture()
def task_with_bad_files(tmp_path, bad_corpus):
    clean = tmp_path / "clean" / "task"
    _labelled_task(clean, np.random.default_rng(0))
    dirty = tmp_path / "dirty" / "task"
    shutil.copytree(clean, dirty)
    shutil.copy(bad_corpus["truncated_data"][0], dirty / "train" / "0" / "broken.wav")
    shutil.copy(bad_corpus["nan"][0], dirty / "test" / "1" / "nan.wav")
    return clean, dirty


def test_train_stops_on_a_bad_file_without_skip_bad(task_with_bad_files, tmp_path, capsys):
    _, dirty = task_with_bad_files
    code, _, err = run_cli(["train", dirty, "--detector", "mahalanobis", "--no-cache",
                            "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, dirty / "train" / "0" / "broken.wav", "truncated data")


def test_skip_bad_carries_on_and_reports_the_skipped_files(task_with_bad_files, tmp_path, capsys):
    clean, dirty = task_with_bad_files
    runs = {}
    for name, data, extra in (("clean", clean, []), ("dirty", dirty, ["--skip-bad"])):
        run = tmp_path / f"run-{name}"
        code, _, err = run_cli(["train", data, "--detector", "mahalanobis", "--no-cache",
                                "--out", run, *extra], capsys)
        assert code == 0, err
        code, _, err = run_cli(["score", run, *extra], capsys)
        assert code == 0, err
        code, _, err = run_cli(["evaluate", run, "--threshold", "contamination:0.1"], capsys)
        assert code == 0, err
        runs[name] = run

    info = json.loads((runs["dirty"] / "run.json").read_text())
    skipped = {os.path.basename(item["path"]) for item in info["skipped"]}
    assert skipped == {"broken.wav", "nan.wav"}
    report = (Run.open(runs["dirty"]).latest_scores_dir / "report.html").read_text()
    assert "broken.wav" in report and "nan.wav" in report

    # the good files' scores are the same as without the bad files
    def scores(run):
        table = pd.read_csv(Run.open(run).scores_path)
        table["name"] = table["path"].map(lambda p: "/".join(p.split("/")[-3:]))
        return table.set_index("name")["score"].sort_index()

    clean_scores, dirty_scores = scores(runs["clean"]), scores(runs["dirty"])
    assert "test/1/nan.wav" not in dirty_scores.index
    pd.testing.assert_series_equal(clean_scores, dirty_scores)
