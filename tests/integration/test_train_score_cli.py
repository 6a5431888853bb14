"""End-to-end tests of the ``train``, ``score`` and ``detectors`` commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers.cli import run_cli as cli
from soundwatch.cli import main

SR = 16000
FAST_PARAM = "frontend_params={n_mels: 32}"
SOUNDWATCH = Path(sys.executable).with_name("soundwatch")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two machine types in the DCASE 2020 layout, 0.5 s noise clips (anomalies louder)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for machine in ("fan", "pump"):
        for split, items in (("train", [("normal", 0.1)] * 6),
                             ("test", [("normal", 0.1), ("anomaly", 0.6)] * 3)):
            for i, (label, amp) in enumerate(items):
                path = root / machine / split / f"{label}_id_0{i % 2}_{i:08d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, (amp * rng.standard_normal(SR // 2)).astype(np.float32), SR)
    return root


@pytest.fixture(scope="module")
def run_dir(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(sys, "argv", ["soundwatch", "train", str(data), "--detector", "mahalanobis",
                                 "--param", FAST_PARAM, "--no-cache", "--out", str(out)])
        main()
    finally:
        mp.undo()
    return out


def test_train_command_writes_run_and_summary(run_dir, data):
    assert (run_dir / "detector" / "fan" / "config.json").is_file()
    assert (run_dir / "detector" / "pump" / "config.json").is_file()
    assert (run_dir / "scores" / "train_scores.csv").is_file()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["command"][1:3] == ["train", str(data)]


def test_score_command_writes_dcase_files(run_dir, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "score", run_dir, "--out",
                         run_dir / "scores" / "dcase")
    assert code == 0, err
    folder = run_dir / "scores" / "dcase"
    names = sorted(p.name for p in folder.glob("anomaly_score_*.csv"))
    # DCASE 2020 data: the 2020 evaluator's file names
    assert names == [f"anomaly_score_{m}_id_{s}.csv" for m in ("fan", "pump") for s in ("00", "01")]
    assert (folder / "scores.csv").is_file()
    assert "fan" in out and "pump" in out
    first = (folder / names[0]).read_text().splitlines()[0]
    assert first.split(",")[0].endswith(".wav"), "no header line"


def test_config_preset_and_overrides(data, tmp_path, monkeypatch, capsys):
    preset = tmp_path / "maha.yaml"
    preset.write_text("detector: mahalanobis\nparams:\n  frontend_params: {n_mels: 16}\n"
                      "  scorer__max_rows: 100\nseed: 1\n")
    out = tmp_path / "run"
    code, stdout, err = cli(monkeypatch, capsys, "train", data, "--config", preset, "--machine",
                            "pump", "--seed", "3", "--param", FAST_PARAM, "--no-cache",
                            "--out", out)
    assert code == 0, err
    import yaml

    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["seed"] == 3 and cfg["machines"] == ["pump"]
    assert cfg["params"] == {"frontend_params": {"n_mels": 32}, "scorer__max_rows": 100}
    saved = json.loads((out / "detector" / "pump" / "config.json").read_text())
    assert saved["params"]["scorer_params"]["max_rows"] == 100 and saved["params"]["seed"] == 3
    assert "pump" in stdout


def test_long_recording_command(run_dir, tmp_path, monkeypatch, capsys):
    wav = tmp_path / "long.wav"
    sf.write(wav, (0.1 * np.random.default_rng(3).standard_normal(SR * 20)).astype(np.float32), SR)
    code, out, err = cli(monkeypatch, capsys, "score", run_dir, wav, "--window", "2", "--hop",
                         "2", "--machine", "fan", "--out", tmp_path / "w")
    assert code == 0, err
    rows = (tmp_path / "w" / "long_windows.csv").read_text().splitlines()
    assert rows[0] == ("start_s,end_s,score,threshold,decision,percentile,status,"
                       "status_reason") and len(rows) == 1 + 10
    assert (tmp_path / "w" / "long_windows.png").stat().st_size > 1000
    assert (tmp_path / "w" / "long_events.csv").is_file()
    assert (tmp_path / "w" / "long_events.json").is_file()
    assert "10 windows" in out


def test_window_longer_than_the_file_exits_2(run_dir, tmp_path, monkeypatch, capsys):
    wav = tmp_path / "short.wav"
    sf.write(wav, (0.1 * np.random.default_rng(3).standard_normal(SR * 3)).astype(np.float32), SR)
    code, out, err = cli(monkeypatch, capsys, "score", run_dir, wav, "--window", "400",
                         "--machine", "fan", "--out", tmp_path / "w")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: --window: 400 s is longer than {wav} (3.00 s); give a shorter window"]


def test_detectors_command_lists_the_registry(monkeypatch, capsys):
    from soundwatch.detectors import describe_detectors

    code, out, _ = cli(monkeypatch, capsys, "detectors")
    assert code == 0
    described = describe_detectors()
    assert described
    for name, text in described.items():
        assert name in out
        assert text.split()[0] in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "{tmp}/missing", "-d", "mahalanobis"], "no such data folder"),
        (["train", "{data}", "-d", "no-such-detector"], "unknown detector"),
        (["train", "{data}", "-d", "mahalanobis", "-m", "drill"], "unknown machine(s) drill"),
        (["train", "{data}", "-d", "mahalanobis", "--objective", "synthetic"],
         "does not accept objective='synthetic' (needs an encoder)"),
        (["train", "{data}", "-d", "mahalanobis", "--param", "oops"], "expected key=value"),
        (["train", "{data}", "-d", "mahalanobis", "--device", "tpu"], "device must be"),
        (["train", "{data}", "-d", "mahalanobis", "--resume"], "needs --out"),
        (["train", "{data}", "--config", "{tmp}/none.yaml"], "no such config file"),
        (["score", "{tmp}/no-run"], "no such run folder"),
        (["score", "{tmp}", "--window", "1"], "give its path"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, data, tmp_path, monkeypatch, capsys):
    argv = [a.format(tmp=tmp_path, data=data) for a in args]
    code, _, err = cli(monkeypatch, capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]


def test_score_of_a_run_without_detector_exits_2(data, tmp_path, monkeypatch, capsys):
    from soundwatch.config import RunConfig
    from soundwatch.runs import Run

    Run.create(RunConfig("mahalanobis", data=str(data)), tmp_path / "r")
    code, _, err = cli(monkeypatch, capsys, "score", tmp_path / "r")
    assert code == 2 and "no trained detector" in err


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "sys.argv = ['soundwatch', '--help']\n"
        "from soundwatch.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'pandas', 'sklearn', 'librosa', "
        "'lightning', 'soundwatch.pipeline') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    for command in ("train", "score", "detectors"):
        assert command in out.stdout


@pytest.mark.skipif(not SOUNDWATCH.exists(), reason="console script not installed")
def test_console_script_exit_code_2(tmp_path):
    proc = subprocess.run([str(SOUNDWATCH), "train", str(tmp_path / "nope"), "-d", "knn"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such data folder"]


@pytest.mark.real
def test_train_and_score_real_recordings(real_data_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, _, err = cli(monkeypatch, capsys, "train", real_data_root, "-d", "mahalanobis",
                       "-m", "fan", "--param", FAST_PARAM, "--no-cache", "--out", out)
    assert code == 0, err
    code, _, err = cli(monkeypatch, capsys, "score", out)
    assert code == 0, err
    from soundwatch.runs import Run
    from soundwatch.scores import read_scores_table

    folder = Run.open(out).latest_scores_dir
    table = read_scores_table(folder / "scores.csv")
    n_test = len(list((real_data_root / "fan" / "test").glob("*.wav")))
    assert len(table) == n_test and set(table["machine"]) == {"fan"}
    dcase = list(folder.glob("anomaly_score_fan_id_*.csv"))  # DCASE 2020: the 2020 names
    assert dcase
    assert sum(len(p.read_text().splitlines()) for p in dcase) == n_test
