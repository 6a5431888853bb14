"""MIMII raw folders from the CLI: --train-normals and --split-seed, and the error's cause."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import run_cli as cli

SR = 16000


@pytest.fixture(scope="module")
def mimii(tmp_path_factory) -> Path:
    """One machine ID with 4 normal and 6 abnormal recordings (few normals)."""
    root = tmp_path_factory.mktemp("mimii") / "0_dB_fan"
    rng = np.random.default_rng(2)
    for folder, amp, count in (("normal", 0.1, 4), ("abnormal", 0.7, 6)):
        for i in range(count):
            path = root / "fan" / "id_00" / folder / f"{i:08d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (amp * rng.standard_normal(SR // 2)).astype(np.float32), SR)
    return root


def test_train_normals_and_split_seed(mimii, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, _, err = cli(monkeypatch, capsys, "train", mimii, "-d", "mahalanobis", "--param",
                       "frontend_params={n_mels: 32}", "--no-cache", "--train-normals", "3",
                       "--split-seed", "4", "--out", out)
    assert code == 0, err
    info = json.loads((out / "run.json").read_text())
    assert info["split"] == {"seed": 4, "train_normals": 3}
    train = pd.read_csv(out / "scores" / "train_scores.csv")
    assert len(train) == 3
    code, _, err = cli(monkeypatch, capsys, "score", out, "--out", tmp_path / "s")
    assert code == 0, err
    test = pd.read_csv(tmp_path / "s" / "scores.csv")
    assert len(test) == 7 and (test["label"] == 1).sum() == 6, "the run's own split is tested"
    assert set(test["path"]).isdisjoint(train["path"])


def test_default_split_leaves_normals_for_training(mimii, tmp_path, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "train", mimii, "-d", "mahalanobis", "--param",
                       "frontend_params={n_mels: 32}", "--no-cache", "--out", tmp_path / "r")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "r" / "scores" / "train_scores.csv")) == 2


def test_missing_normals_error_names_the_cause(tmp_path, monkeypatch, capsys):
    root = tmp_path / "fan_only_abnormal"
    for i in range(3):
        path = root / "fan" / "id_00" / "abnormal" / f"{i:08d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(SR // 2, np.float32), SR)
    code, _, err = cli(monkeypatch, capsys, "train", root, "-d", "mahalanobis", "--no-cache",
                       "--out", tmp_path / "r")
    assert code == 2
    line = err.strip()
    assert "--train-normals" in line and "only 0 normal recording(s)" in line
    assert "--machine" not in line
