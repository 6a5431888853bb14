"""``soundwatch export`` on a trained run, then scoring with soundwatch.runtime only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnx", reason="the [export] extra (onnx) is not installed")
pytest.importorskip("onnxruntime", reason="the [export] extra (onnxruntime) is not installed")

from helpers.cli import run_cli as cli
from soundwatch.cli import main  # noqa: E402
from soundwatch.detectors.loading import load_run_detector  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A mahalanobis run on two machine types (DCASE 2020 layout, 0.5 s noise clips)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for machine in ("fan", "pump"):
        for split, items in (("train", [("normal", 0.1)] * 6),
                             ("test", [("normal", 0.1), ("anomaly", 0.6)] * 2)):
            for i, (label, amp) in enumerate(items):
                path = root / machine / split / f"{label}_id_00_{i:08d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, (amp * rng.standard_normal(SR // 2)).astype(np.float32), SR)
    out = tmp_path_factory.mktemp("runs") / "run"
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(sys, "argv", ["soundwatch", "train", str(root), "--detector", "mahalanobis",
                                 "--param", "frontend_params={n_mels: 32}", "--no-cache",
                                 "--out", str(out)])
        main()
    finally:
        mp.undo()
    return out


def test_export_command_then_runtime_scores_like_the_run(run_dir, tmp_path, monkeypatch,
                                                         capsys):
    out = tmp_path / "export"
    code, stdout, err = cli(monkeypatch, capsys, "export", run_dir, "--out", out)
    assert code == 0, err
    assert "fan:" in stdout and "pump:" in stdout and "verified" in stdout
    assert json.loads((out / "index.json").read_text())["machines"] == ["fan", "pump"]

    from soundwatch.runs import Run

    data_root = Path(json.loads((run_dir / "run.json").read_text())["command"][2])
    wavs = sorted((data_root / "fan" / "test").glob("*.wav"))
    ref = load_run_detector(Run.open(run_dir), "fan").score_signals(
        [sf.read(p, dtype="float32")[0] for p in wavs], SR)
    code = textwrap.dedent(f"""
        import sys, json
        import soundwatch.runtime
        det = soundwatch.runtime.load({str(out)!r}, machine="fan")
        s = det.score({[str(p) for p in wavs]!r})
        assert "torch" not in sys.modules
        print(json.dumps([float(v) for v in s]))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(json.loads(res.stdout), ref, rtol=1e-4)


def test_score_exported_writes_the_runtime_scores(run_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "export"
    code, _, err = cli(monkeypatch, capsys, "export", run_dir, "--out", out)
    assert code == 0, err
    data_root = Path(json.loads((run_dir / "run.json").read_text())["command"][2])
    folder = data_root / "fan" / "test"
    csv_path = tmp_path / "scores.csv"
    code, _, err = cli(monkeypatch, capsys, "score", out, folder, "--exported", "--machine",
                       "fan", "--out", csv_path)
    assert code == 0, err
    import pandas as pd

    table = pd.read_csv(csv_path)
    wavs = sorted(folder.glob("*.wav"))
    assert sorted(table["path"]) == sorted(str(p) for p in wavs)
    ref = _torch_scores(run_dir, wavs)
    got = table.set_index("path").loc[[str(p) for p in wavs], "score"].to_numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert set(table["decision"]) <= {0, 1} and table["percentile"].between(0, 100).all()
    code, _, err = cli(monkeypatch, capsys, "score", out, "--exported")
    assert code == 2 and "DATA" in err


def _torch_scores(run_dir: Path, wavs: list[Path]) -> np.ndarray:
    from soundwatch.runs import Run

    return load_run_detector(Run.open(run_dir), "fan").score_signals(
        [sf.read(p, dtype="float32")[0] for p in wavs], SR)


@pytest.mark.parametrize(("args", "message"), [
    (["--machine", "valve"], "no trained detector for valve"),
    (["--format", "tflite"], "'tflite' is not one of onnx"),
])
def test_export_command_errors_are_one_line(run_dir, tmp_path, monkeypatch, capsys, args,
                                            message):
    code, _, err = cli(monkeypatch, capsys, "export", run_dir, "--out", tmp_path / "x", *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_export_into_the_run_folder_is_refused(run_dir, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "export", run_dir, "--out", run_dir / "export")
    assert code == 2 and "outside the run folder" in err


def test_runtime_load_of_a_run_export_needs_a_machine(run_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "export"
    assert cli(monkeypatch, capsys, "export", run_dir, "--out", out, "-m", "pump")[0] == 0
    import soundwatch.runtime
    from soundwatch.errors import ConfigError

    assert soundwatch.runtime.load(out).manifest["machine"] == "pump"  # the only one
    with pytest.raises(ConfigError, match="no export for machine 'fan'"):
        soundwatch.runtime.load(out, machine="fan")
