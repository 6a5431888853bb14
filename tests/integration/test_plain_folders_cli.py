"""The engineer's path, part one: train from plain folders of arbitrarily named recordings,
score new ones, pick the channel of multi-channel files (train, score, service, export,
runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import one_error_line
from helpers.cli import run_cli as cli

SR = 16000
FAST = ["--detector", "mahalanobis", "--param", "frontend_params={n_mels: 32}", "--no-cache"]


def _pump(rng: np.random.Generator, fault: bool, channels: int = 1,
          fault_channel: int | None = None) -> np.ndarray:
    """One second of a pump hum; a fault adds a whine (on one channel only, if given)."""
    t = np.arange(SR) / SR
    base = 0.3 * np.sin(2 * np.pi * 120 * t)
    out = np.stack([base + 0.05 * rng.standard_normal(t.size) for _ in range(channels)], 1)
    if fault:
        whine = 0.4 * np.sin(2 * np.pi * 1700 * t)
        if fault_channel is None:
            out += whine[:, None]
        else:
            out[:, fault_channel] += whine
    return out.astype(np.float32) if channels > 1 else out[:, 0].astype(np.float32)


def _write(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, SR)
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """train/pumpA_2026-01-0X.wav (8 normal), new/ (2 normal + 2 faulty, any names)."""
    root = tmp_path_factory.mktemp("engineer")
    rng = np.random.default_rng(0)
    for day in range(1, 9):
        _write(root / "train" / f"pumpA_2026-01-0{day}.wav", _pump(rng, False))
    for name, fault in (("pumpA_2026-02-01.wav", False), ("pumpA_2026-02-02 noon.wav", False),
                        ("pumpA_2026-02-03.wav", True), ("odd name (bearing?).wav", True)):
        _write(root / "new" / name, _pump(rng, fault))
    return root


def test_a_flat_folder_needs_machine_and_the_error_names_the_layouts(plain, monkeypatch,
                                                                      capsys, tmp_path):
    code, _, err = cli(monkeypatch, capsys, "train", plain / "train", *FAST,
                       "--out", tmp_path / "run")
    line = one_error_line(err)
    assert code == 2 and "8 audio file(s)" in line
    for shape in ("--machine NAME", "DIR/<machine>/*.wav", "normal/*.wav (+ abnormal/)",
                  "dcase-dev", "mimii", "labelled"):
        assert shape in line
    assert not (tmp_path / "run").exists()


def test_train_a_plain_folder_then_score_another(plain, monkeypatch, capsys, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli(monkeypatch, capsys, "train", plain / "train", "--machine", "pumpA",
                       *FAST, "--out", run)
    assert code == 0, err
    info = json.loads((run / "run.json").read_text())
    assert info["machines"]["pumpA"]["train_clips"] == 8 and info["channel"] == 0
    code, out, err = cli(monkeypatch, capsys, "score", run, plain / "new", "--json")
    assert code == 0, err
    rows = {Path(r["path"]).name: r for r in json.loads(out)["clips"]}
    assert {n for n, r in rows.items() if r["decision"] == 1} == {
        "pumpA_2026-02-03.wav", "odd name (bearing?).wav"}
    assert {r["machine"] for r in rows.values()} == {"pumpA"}
    # scoring the default data (the run's folder): no test clips there, said plainly
    code, _, err = cli(monkeypatch, capsys, "score", run)
    assert code == 2 and "no clips to score" in one_error_line(err)


def test_normal_abnormal_folders_abnormal_never_trains(plain, monkeypatch, capsys, tmp_path):
    from soundwatch.detectors.composed import ComposedDetector

    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    for i in range(8):
        _write(data / "pumpA" / "normal" / f"n{i}.wav", _pump(rng, False))
    for i in range(3):
        _write(data / "pumpA" / "abnormal" / f"a{i}.wav", _pump(rng, True))
    for i in range(6):
        _write(data / "fanB" / f"fanB {i}.wav", _pump(rng, False))
    fitted: list[str] = []
    real_fit = ComposedDetector.fit

    def spy(self, clips, labels=None, context=None):
        fitted.extend(str(c.path) for c in clips)
        return real_fit(self, clips, labels, context)

    monkeypatch.setattr(ComposedDetector, "fit", spy)
    run = tmp_path / "run"
    code, out, err = cli(monkeypatch, capsys, "train", data, *FAST, "--out", run)
    assert code == 0, err
    assert len(fitted) == 14 and not any("/abnormal/" in p for p in fitted)
    info = json.loads((run / "run.json").read_text())["machines"]
    assert info["pumpA"]["train_clips"] == 8 and info["fanB"]["train_clips"] == 6
    check = info["pumpA"]["abnormal_check"]
    assert check["abnormal_clips"] == 3 and check["flagged"] == 3 and check["auc"] == 1.0
    assert check["normal_clips"] == 8 and "suggested_threshold" in check
    assert "abnormal_check" not in info["fanB"]
    train_paths = pd.read_csv(run / "scores" / "train_scores.csv")["path"]
    assert not train_paths.str.contains("/abnormal/").any()
    assert "3 of 3 abnormal recording(s) flagged" in out and "not applied" in out


@pytest.fixture(scope="module")
def multichannel(tmp_path_factory) -> Path:
    """4-channel recordings; the fault is heard on channel 2 only."""
    root = tmp_path_factory.mktemp("multichannel")
    rng = np.random.default_rng(2)
    for i in range(8):
        _write(root / "train" / f"fanB_{i}.wav", _pump(rng, False, 4))
    for i in range(2):
        _write(root / "new" / f"ok_{i}.wav", _pump(rng, False, 4))
        _write(root / "new" / f"bad_{i}.wav", _pump(rng, True, 4, fault_channel=2))
    return root


@pytest.fixture(scope="module")
def channel_run(multichannel, tmp_path_factory) -> Path:
    from soundwatch.pipeline import train

    run = tmp_path_factory.mktemp("runs") / "ch2"
    train(multichannel / "train", "mahalanobis", machines=["fanB"], out=run,
          params={"frontend_params": {"n_mels": 32}}, channel=2)
    return run


def _flagged(out: str) -> set[str]:
    return {Path(r["path"]).name for r in json.loads(out)["clips"] if r["decision"] == 1}


def test_channel_is_recorded_and_used_by_scoring(channel_run, multichannel, monkeypatch,
                                                 capsys, tmp_path):
    assert json.loads((channel_run / "run.json").read_text())["channel"] == 2
    assert "channel: 2" in (channel_run / "config.yaml").read_text()
    code, out, err = cli(monkeypatch, capsys, "score", channel_run, multichannel / "new",
                         "--json")
    assert code == 0, err
    assert _flagged(out) == {"bad_0.wav", "bad_1.wav"}
    scoring = Path(json.loads(out)["scores_dir"])
    assert json.loads((scoring / "scoring.json").read_text())["channel"] == 2
    # another channel on request: the fault is not heard there
    code, out, err = cli(monkeypatch, capsys, "score", channel_run, multichannel / "new",
                         "--channel", "0", "--json")
    assert code == 0, err
    assert _flagged(out) == set()
    code, _, err = cli(monkeypatch, capsys, "score", channel_run, multichannel / "new",
                       "--channel", "7")
    line = one_error_line(err)
    assert code == 2 and ".wav: channel 7 asked for, file has 4 channel(s)" in line
    code, _, err = cli(monkeypatch, capsys, "train", multichannel / "train", "--machine",
                       "fanB", "--channel", "9", *FAST, "--out", tmp_path / "nine")
    assert code == 2 and "file has 4 channel(s)" in one_error_line(err)
    assert not (tmp_path / "nine").exists(), "checked before the run folder is made"


def test_service_scorer_and_long_recording_read_the_runs_channel(channel_run, multichannel):
    from soundwatch.monitor.scoring import MachineScorer
    from soundwatch.pipeline import score_long_recording

    bad = multichannel / "new" / "bad_0.wav"
    assert MachineScorer([channel_run]).score_file("fanB", bad).decision == 1
    assert MachineScorer([channel_run], channel=0).score_file("fanB", bad).decision == 0
    result = score_long_recording(channel_run, bad, 1.0, 1.0, plot=False)
    assert list(result.decisions) == [1]


def test_export_and_runtime_read_the_runs_channel(channel_run, multichannel, tmp_path,
                                                  capsys):
    pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
    pytest.importorskip("onnx", reason="the [export] extra is not installed")
    from soundwatch.export.run import export_run
    from soundwatch.runtime.__main__ import main

    export_run(channel_run, tmp_path / "export")
    manifest = json.loads((tmp_path / "export" / "fanB" / "manifest.json").read_text())
    assert manifest["channel"] == 2
    files = sorted((multichannel / "new").glob("*.wav"))
    assert main([str(tmp_path / "export"), *map(str, files)]) == 0
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {Path(r["path"]).name for r in rows if r["decision"] == "1"} == {
        "bad_0.wav", "bad_1.wav"}
