"""One decision everywhere: score, evaluate, watch/serve's scorer and the runtime agree.

A small synthetic set (``soundwatch synth machines``, 2 s clips) is trained with a
false-alarm target, scored, evaluated, exported and scored again with the runtime; the
alarm level is then changed with ``soundwatch threshold`` and every path follows it. A
silent and a clipped recording get the ``sensor`` status everywhere and are never
flagged.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import run_cli as cli

SR = 16000


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """(run, data, extra recordings): fan, 30+5 normal training clips, 16 test clips."""
    mp = pytest.MonkeyPatch()
    capsys = _NoCapture()
    root = tmp_path_factory.mktemp("one-decision")
    data, run = root / "data", root / "run"
    try:
        code, _, err = cli(mp, capsys, "synth", "machines", data, "--machines", "fan",
                           "--train-source", 30, "--train-target", 5, "--test-per-group", 4,
                           "--seconds", 2, "--workers", 1, "-q")
        assert code == 0, err
        code, _, err = cli(mp, capsys, "train", data, "--detector", "mahalanobis", "--no-cache",
                           "--threshold", "far:0.05", "--out", run)
        assert code == 0, err
    finally:
        mp.undo()
    extra = root / "extra"
    extra.mkdir()
    rng = np.random.default_rng(0)
    sf.write(extra / "silent.wav", np.zeros(2 * SR, np.float32), SR, subtype="PCM_16")
    sf.write(extra / "clipped.wav", np.clip(rng.normal(0, 1, 2 * SR), -1, 1), SR,
             subtype="PCM_16")
    return run, data, [str(extra / "silent.wav"), str(extra / "clipped.wav")]


class _NoCapture:
    """capsys stand-in for the module fixture (output is not checked there)."""

    def readouterr(self) -> tuple[str, str]:
        return "", ""


def _score(monkeypatch, capsys, run: Path, *args: object) -> pd.DataFrame:
    code, out, err = cli(monkeypatch, capsys, "score", run, *args, "--json")
    assert code == 0, err
    return pd.DataFrame(json.loads(out)["clips"]).set_index("path")


def _runtime(export: Path, files: list[str]) -> pd.DataFrame:
    from soundwatch.runtime.__main__ import write_scores

    buf = io.StringIO()
    write_scores(str(export), files, buf, "fan")
    return pd.DataFrame(list(csv.DictReader(io.StringIO(buf.getvalue())))).set_index("path")


def _flagged(table: pd.DataFrame) -> set[str]:
    return {Path(p).name for p, d in table["decision"].items() if int(d) == 1}


def test_score_evaluate_monitor_and_runtime_flag_the_same_clips(trained, tmp_path,
                                                                monkeypatch, capsys):
    pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
    from soundwatch.monitor.scoring import MachineScorer

    run, data, extra = trained
    rule = json.loads((run / "decisions" / "fan.json").read_text())
    assert rule["policy"] == "far:0.05"
    info = json.loads((run / "run.json").read_text())
    far = info["decisions"]["fan"]["false_alarm"]
    assert far["n"] == 35 and far["exceed"] <= 1 and 0 <= far["low"] < far["high"] <= 1
    tests = sorted(str(p) for p in (data / "fan" / "test").glob("*.wav"))

    scored = _score(monkeypatch, capsys, run, *tests, *extra, "-m", "fan")
    assert len(scored) == len(tests) + 2
    sensor = scored.loc[extra]
    assert sensor["status"].tolist() == ["sensor"] * 2 and sensor["decision"].sum() == 0
    assert "silent" in sensor.loc[extra[0], "status_reason"]
    assert "clipped" in sensor.loc[extra[1], "status_reason"]
    flagged = _flagged(scored)
    assert flagged, "loud synthetic anomalies are flagged"
    assert all(scored.loc[p, "percentile"] >= 95.0 for p in scored.index
               if scored.loc[p, "decision"] == 1), "flagged above the 95th percentile"

    code, out, err = cli(monkeypatch, capsys, "evaluate", run, "--json", "--no-plots",
                         "--explain", 0, "--threshold", "gamma")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["decision"]["source"] == "scoring"
    assert metrics["decision"]["policy"] == "far:0.05"
    assert metrics["counts"]["flagged"] == len(flagged)
    assert metrics["counts"]["sensor"] == 2
    assert "gamma:0.9" in metrics["suggestions"]
    decided = pd.read_csv(run / metrics["files"]["scores_dir"] / "scores.csv")
    assert {Path(p).name for p in decided.loc[decided["decision"] == 1, "path"]} == flagged

    scorer = MachineScorer([run])
    verdicts = {p: scorer.score_file("fan", p) for p in [*tests, *extra]}
    assert {Path(p).name for p, v in verdicts.items() if v.decision == 1} == flagged
    assert {v.status for p, v in verdicts.items() if p in extra} == {"sensor"}

    code, _, err = cli(monkeypatch, capsys, "export", run, "--out", tmp_path / "export")
    assert code == 0, err
    manifest = json.loads((tmp_path / "export" / "fan" / "manifest.json").read_text())
    assert manifest["threshold"]["policy"] == "far:0.05"
    assert manifest["threshold"]["value"] == pytest.approx(rule["threshold"])
    runtime = _runtime(tmp_path / "export", [*tests, *extra])
    assert _flagged(runtime) == flagged
    assert runtime.loc[extra, "status"].tolist() == ["sensor", "sensor"]
    np.testing.assert_allclose(runtime.loc[tests, "score"].astype(float),
                               scored.loc[tests, "score"], rtol=1e-3)
    # a bad file in the batch: an error row, the others scored as before
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF" + b"\0" * 60)
    mixed = _runtime(tmp_path / "export", [tests[0], str(garbage), tests[1]])
    assert mixed["status"].tolist() == ["ok", "error", "ok"]
    assert mixed.loc[str(garbage), "status_reason"] and mixed.loc[str(garbage), "score"] == ""
    assert mixed.loc[tests[:2], "score"].tolist() == runtime.loc[tests[:2], "score"].tolist()
    code, out, err = cli(monkeypatch, capsys, "score", tmp_path / "export", tests[0], garbage,
                         "--exported", "-m", "fan")
    assert code == 1 and out.count("\n") == 3 and "1 of 2 file(s) could not be scored" in err

    # a new alarm level, without retraining: every path follows it
    code, out, err = cli(monkeypatch, capsys, "threshold", run, "--far", "0.3")
    assert code == 0, err
    assert "far:0.3" in out and "estimated false-alarm rate" in out
    info = json.loads((run / "run.json").read_text())
    change = info["threshold_changes"][-1]
    assert change["policy"] == "far:0.3" and change["previous"]["policy"] == "far:0.05"
    rescored = _score(monkeypatch, capsys, run, *tests, *extra, "-m", "fan")
    assert (rescored["threshold"] < scored["threshold"]).all()
    assert _flagged(rescored) >= flagged
    assert rescored.loc[extra, "decision"].sum() == 0
    scorer = MachineScorer([run])
    assert {Path(p).name for p in tests if scorer.score_file("fan", p).decision} == \
        _flagged(rescored)
    code, _, err = cli(monkeypatch, capsys, "export", run, "--out", tmp_path / "export2")
    assert code == 0, err
    assert _flagged(_runtime(tmp_path / "export2", [*tests, *extra])) == _flagged(rescored)
    # this scoring alone with another level: recorded with the scoring, the rule unchanged
    once = _score(monkeypatch, capsys, run, *tests, "-m", "fan", "--threshold", "fixed:1e9")
    assert once["decision"].sum() == 0
    assert json.loads((run / "decisions" / "fan.json").read_text())["policy"] == "far:0.3"


def test_bad_policies_are_one_line_errors(trained, monkeypatch, capsys):
    from helpers.cli import one_error_line

    run, _, _ = trained
    for args in (["threshold", run, "--policy", "best-f1"],
                 ["threshold", run, "--far", "2"],
                 ["score", run, "--threshold", "nonsense"],
                 ["threshold", run, "--far", "0.1", "--machine", "valve"]):
        code, _, err = cli(monkeypatch, capsys, *args)
        assert code == 2, (args, err)
        one_error_line(err)


def test_a_silent_stretch_of_a_long_recording_is_a_sensor_window(trained, tmp_path,
                                                                   monkeypatch, capsys):
    run, data, _ = trained
    normal = sorted((data / "fan" / "test").glob("*normal*.wav"))[:3]
    parts = [sf.read(p, dtype="float32")[0] for p in normal]
    parts.insert(1, np.zeros(2 * SR, np.float32))  # the microphone unplugged for 2 s
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate(parts), SR, subtype="PCM_16")
    code, out, err = cli(monkeypatch, capsys, "score", run, long, "--window", 2, "--json")
    assert code == 0, err
    windows = pd.DataFrame(json.loads(out)["windows"])
    assert windows["status"].tolist() == ["ok", "sensor", "ok", "ok"]
    assert "silent" in windows.loc[1, "status_reason"] and windows.loc[1, "decision"] == 0
    table = pd.read_csv(json.loads(out)["windows_csv"], keep_default_na=False)
    assert table["status"].tolist() == windows["status"].tolist()
