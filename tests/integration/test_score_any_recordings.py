"""Score any folder of recordings with a trained run; scorings never overwrite each other."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.cli import run_cli as cli
from soundwatch.cli import main

SR = 16000
FAST_PARAM = "frontend_params={n_mels: 32}"


def _noise(rng: np.random.Generator, amp: float, seconds: float = 0.5) -> np.ndarray:
    x = amp * rng.standard_normal(int(SR * seconds))
    # loud, not clipped: a clipped clip is a sensor problem, never a machine anomaly
    return (x / max(1.0, float(np.abs(x).max()))).astype(np.float32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A mahalanobis run on two machine types (DCASE 2020 layout, quiet normal noise)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for machine in ("fan", "pump"):
        for i in range(8):
            path = root / machine / "train" / f"normal_id_00_{i:08d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _noise(rng, 0.1), SR)
        (root / machine / "test").mkdir()
        for i, (label, amp) in enumerate((("normal", 0.1), ("anomaly", 0.8))):
            sf.write(root / machine / "test" / f"{label}_id_00_{i:08d}.wav", _noise(rng, amp), SR)
    out = tmp_path_factory.mktemp("runs") / "run"
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(sys, "argv", ["soundwatch", "train", str(root), "--detector", "mahalanobis",
                                 "--param", FAST_PARAM, "--no-cache", "--out", str(out)])
        main()
    finally:
        mp.undo()
    return out


@pytest.fixture(scope="module")
def incoming(tmp_path_factory) -> dict[str, float]:
    """Arbitrarily named WAV and FLAC files in nested folders: name -> amplitude."""
    root = tmp_path_factory.mktemp("incoming")
    rng = np.random.default_rng(7)
    files = {
        "Monday morning.wav": 0.1,
        "nested/deeper/rec-0042.FLAC": 0.1,
        "nested/Überlauf 3.flac": 1.0,
        "loud_bang.wav": 1.2,
    }
    for name, amp in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "FLAC" if name.lower().endswith(".flac") else "WAV"
        sf.write(path, _noise(rng, amp), SR, format=fmt)
    return {str(root / k): v for k, v in files.items()}


def test_score_a_folder_of_any_names_with_decisions(run_dir, incoming, monkeypatch, capsys):
    folder = Path(next(iter(incoming))).parent
    code, out, err = cli(monkeypatch, capsys, "score", run_dir, folder, "-m", "fan", "--json")
    assert code == 0, err
    result = json.loads(out)
    clips = {row["path"]: row for row in result["clips"]}
    assert set(clips) == set(incoming), "every file found, recursively, whatever its name"
    for path, row in clips.items():
        assert row["machine"] == "fan" and row["split"] == "test" and row["label"] is None
        assert row["decision"] == int(row["score"] > row["threshold"])
        assert 0.0 <= row["percentile"] <= 100.0
        if incoming[path] >= 1.0:  # ten times louder than anything in training
            assert row["decision"] == 1 and row["percentile"] == 100.0, path
    assert sum(row["decision"] for row in clips.values()) <= 3
    # the same numbers on disk, in the scoring's own folder under the run
    scores_dir = Path(result["scores_dir"])
    assert scores_dir.parent == run_dir / "scores"
    table = pd.read_csv(scores_dir / "scores.csv")
    assert list(table.columns[:10]) == ["path", "machine", "section", "domain", "split",
                                        "label", "score", "threshold", "decision", "percentile"]
    assert sorted(table["path"]) == sorted(incoming)


def test_machine_is_required_when_names_say_nothing(run_dir, incoming, monkeypatch, capsys):
    folder = Path(next(iter(incoming))).parent
    code, out, err = cli(monkeypatch, capsys, "score", run_dir, folder)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --machine: ")
    assert "the run has 2 machine types (fan, pump)" in lines[0]


def test_score_one_file_with_explanations(run_dir, incoming, monkeypatch, capsys, tmp_path):
    loud = next(p for p, amp in incoming.items() if amp > 1.1)
    code, out, err = cli(monkeypatch, capsys, "score", run_dir, loud, "-m", "pump", "--explain",
                         "--out", tmp_path / "one")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "one" / "scores.csv")
    assert table["decision"].tolist() == [1]
    pngs = list((tmp_path / "one" / "explain").glob("*.png"))
    assert [p.name for p in pngs] == ["pump__loud_bang.png"]
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "flagged" in out and "loud_bang.wav" in out


def test_scoring_twice_overwrites_nothing(run_dir, incoming, monkeypatch, capsys):
    folder = Path(next(iter(incoming))).parent
    code, _, err = cli(monkeypatch, capsys, "score", run_dir)
    assert code == 0, err
    first = max((p for p in (run_dir / "scores").iterdir() if p.name.startswith("test-")),
                key=lambda p: p.stat().st_mtime_ns)
    code, _, err = cli(monkeypatch, capsys, "evaluate", run_dir, first.name)
    assert code == 0, err
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.rglob("*") if p.is_file()}
    assert first / "report.html" in before and first / "metrics.json" in before
    code, out, err = cli(monkeypatch, capsys, "score", run_dir, folder, "-m", "pump", "--json")
    assert code == 0, err
    second = Path(json.loads(out)["scores_dir"])
    assert second != first and (second / "scores.csv").is_file()
    code, _, err = cli(monkeypatch, capsys, "evaluate", run_dir)  # default: the newest scoring
    assert code == 0, err
    assert (second / "report.html").is_file()
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.rglob("*") if p.is_file()}
    assert after == before, "the first scoring and its evaluation are untouched"
    info = json.loads((run_dir / "run.json").read_text())
    assert {first.name, second.name} <= set(info["scorings"])
    assert info["scorings"][second.name]["finished"] is True
    steps = set(info["steps"])
    assert f"score/{first.name}/fan" in steps and f"score/{second.name}/pump" in steps
    assert f"evaluate/{first.name}" in steps and f"evaluate/{second.name}" in steps
    # an explicit --out that already holds other scores is refused, never overwritten
    code, _, err = cli(monkeypatch, capsys, "score", run_dir, folder, "-m", "fan", "--out", first)
    assert code == 2 and "never overwritten" in err
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in first.rglob("*")
            if p.is_file()} == before
