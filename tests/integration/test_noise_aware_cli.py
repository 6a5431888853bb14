"""`soundwatch train -p frontend__reference=...` end to end on tiny synthetic 2026/2025 sets."""

from __future__ import annotations

import json

from helpers.cli import run_cli as cli

SMALL = ["--machines", "fan", "--train-source", "6", "--train-target", "2",
         "--test-per-group", "3", "--seconds", "0.5", "--workers", "1", "--quiet"]
FAST = ["-p", "frontend__n_mels=32"]


def test_two_channel_reference_option_trains_scores_and_evaluates(monkeypatch, capsys,
                                                                  tmp_path):
    data, run, cache = tmp_path / "d26", tmp_path / "run", tmp_path / "cache"
    code, _, err = cli(monkeypatch, capsys, "synth", "dcase2026", data, *SMALL)
    assert code == 0, err
    code, _, err = cli(monkeypatch, capsys, "train", data, "-d", "mahalanobis", *FAST,
                       "-p", "frontend__reference=wiener", "--cache-dir", cache, "--out", run)
    assert code == 0, err
    config = json.loads((run / "detector" / "fan" / "config.json").read_text())
    assert config["params"]["frontend_params"]["reference"] == "wiener"
    assert any(p.name.startswith("logmel.wiener-") for p in cache.iterdir())
    code, _, err = cli(monkeypatch, capsys, "score", run, "--out", run / "scores" / "dev")
    assert code == 0, err
    code, out, err = cli(monkeypatch, capsys, "evaluate", run, "dev")
    assert code == 0, err
    assert "official score" in out
    # the exporter refuses the option with one line
    code, _, err = cli(monkeypatch, capsys, "export", run, "--out", tmp_path / "export")
    assert code == 2 and "reference=wiener" in err and "Traceback" not in err


def test_reference_option_on_one_channel_clips_is_one_line(monkeypatch, capsys, tmp_path):
    data = tmp_path / "d25"
    code, _, err = cli(monkeypatch, capsys, "synth", "dcase2025", data, *SMALL,
                       "--supplemental", "2")
    assert code == 0, err
    code, _, err = cli(monkeypatch, capsys, "train", data, "-d", "mahalanobis", *FAST,
                       "-p", "frontend__reference=near-far", "--no-cache",
                       "--out", tmp_path / "bad")
    assert code == 2
    assert "needs two channels" in err and ".wav" in err and "Traceback" not in err
    code, _, err = cli(monkeypatch, capsys, "train", data, "-d", "mahalanobis", *FAST,
                       "-p", "frontend__reference=subtract-noise",
                       "-p", "frontend__noise_augment=1", "--no-cache",
                       "--out", tmp_path / "run")
    assert code == 0, err
