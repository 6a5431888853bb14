"""DCASE 2025 and 2026-layout synthetic sets through synth, inspect, train, score, evaluate."""

from __future__ import annotations

import json

import pytest

from helpers.cli import run_cli as cli
from soundwatch.synth.speech import espeak_available

FAST = "frontend_params={n_mels: 32}"
SMALL = ["--machines", "fan", "--train-source", "6", "--train-target", "2",
         "--test-per-group", "3", "--seconds", "0.5", "--workers", "1", "--quiet"]


def _train_score_evaluate(monkeypatch, capsys, data, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli(monkeypatch, capsys, "train", data, "--detector", "mahalanobis",
                         "--param", FAST, "--no-cache", "--out", run)
    assert code == 0, err
    code, out, err = cli(monkeypatch, capsys, "score", run, "--out", run / "scores" / "dcase")
    assert code == 0, err
    folder = run / "scores" / "dcase"
    assert sorted(p.name for p in folder.glob("anomaly_score_*.csv")) == [
        "anomaly_score_fan_section_00_test.csv"]
    rows = (folder / "anomaly_score_fan_section_00_test.csv").read_text().splitlines()
    assert len(rows) == 12 and all(r.startswith("section_00_") for r in rows)
    code, out, err = cli(monkeypatch, capsys, "evaluate", run, "dcase")
    assert code == 0, err
    assert (folder / "decision_result_fan_section_00_test.csv").is_file()
    metrics = json.loads((folder / "metrics.json").read_text())
    return run, metrics, out


def test_dcase2025_layout_end_to_end(monkeypatch, capsys, tmp_path):
    data = tmp_path / "d25"
    args = ["synth", "dcase2025", data, *SMALL, "--supplemental", "2"]
    if espeak_available():  # speech in the environment, where espeak-ng is installed
        args += ["--speech-snr-db", "3"]
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert (data / "fan" / "supplemental" / "section_00_noise_0002_.wav").is_file()
    code, out, err = cli(monkeypatch, capsys, "inspect", data)
    assert code == 0, err
    assert "dcase2025-supplemental (4)" in out and "supplemental" in out
    run, metrics, out = _train_score_evaluate(monkeypatch, capsys, data, tmp_path)
    # the supplementary clips were neither trained on nor scored
    trained = (run / "scores" / "train_scores.csv").read_text()
    assert "supplemental" not in trained and trained.count("\n") == 1 + 8
    assert "official score" in out


def test_dcase2026_two_channel_layout_end_to_end(monkeypatch, capsys, tmp_path):
    data = tmp_path / "d26"
    code, out, err = cli(monkeypatch, capsys, "synth", "dcase2026", data, *SMALL,
                         "--near-snr-db", "6", "--far-snr-db", "-6")
    assert code == 0, err
    code, out, err = cli(monkeypatch, capsys, "inspect", data)
    assert code == 0, err
    assert "dcase2026-dev (20)" in out and "channels: 2 (20)" in out
    _, metrics, out = _train_score_evaluate(monkeypatch, capsys, data, tmp_path)
    assert "official score" in out


def test_synth_speech_without_espeak_exits_2(monkeypatch, capsys, tmp_path):
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None if n == "espeak-ng"
                        else real(n, *a, **k))
    code, out, err = cli(monkeypatch, capsys, "synth", "dcase2026", tmp_path / "x", *SMALL,
                         "--speech-snr-db", "0")
    assert code == 2
    assert err.strip() == ("error: --speech-snr-db: needs espeak-ng; install it with "
                           "`apt-get install espeak-ng`")


@pytest.mark.parametrize("near, far", [("0", "3")])
def test_far_above_near_exits_2(monkeypatch, capsys, tmp_path, near, far):
    code, _, err = cli(monkeypatch, capsys, "synth", "dcase2026", tmp_path / "x", *SMALL,
                       "--near-snr-db", near, "--far-snr-db", far)
    assert code == 2 and "must not exceed --near-snr-db" in err
