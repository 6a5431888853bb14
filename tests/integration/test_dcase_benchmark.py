"""benchmarks/dcase.py on a tiny synthetic set in the DCASE 2025 layout."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from soundwatch.synth.recent import synth_dcase2025

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dcase.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("dcase_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dcase_benchmark_table_against_the_baseline(bench, tmp_path, capsys):
    data = synth_dcase2025(tmp_path / "dev", "fan", 6, 2, 3, supplemental=1, seconds=0.5,
                           workers=1)
    code = bench.main(["--year", "2025", "--data", str(data), "--presets", "mahalanobis",
                       "--param", "frontend_params={n_mels: 32}", "--out", str(tmp_path / "o")])
    assert code == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "o" / "dcase_2025.json").read_text())
    row = result["results"][0]
    assert row["preset"] == "mahalanobis" and row["mode"] == "dcase2024"
    assert 0.0 <= row["official_score"] <= 1.0 and set(row["machines"]) == {"fan"}
    assert result["baseline"][0] == 56.26
    line = next(x for x in out.splitlines() if x.startswith("| mahalanobis |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[2]) == pytest.approx(100 * row["official_score"], abs=0.005)
    assert float(cells[3]) == pytest.approx(100 * row["official_score"] - 56.26, abs=0.01)
    assert "56.26" in out


def test_dcase_benchmark_bad_input_exits_2(bench, tmp_path, capsys):
    assert bench.main(["--year", "2025", "--data", str(tmp_path), "--presets", "nope"]) == 2
    assert "unknown nope" in capsys.readouterr().err
    assert bench.main(["--year", "2026", "--data", str(tmp_path / "missing")]) == 2
