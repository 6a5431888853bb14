"""evaluate_run on a hand-made run folder: files written, report self-contained, CLI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from soundwatch.errors import EvaluationError
from soundwatch.evaluation.evaluate import evaluate_run


def test_evaluate_run_writes_everything(make_run):
    run = make_run()
    result = evaluate_run(run, threshold="gamma")
    for name in ("metrics.json", "results.csv", "report.html"):
        assert (run / name).is_file(), name
    assert (run / "scores" / "decision_result_fan_section_00_test.csv").is_file()
    pngs = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert pngs == ["auc_pauc.png", "confusion_matrix.png", "distribution_fan.png", "hist_fan.png",
                    "roc_fan.png"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["mode"] == "dcase2024"
    assert metrics["official_score"] == pytest.approx(result.official_score)
    assert metrics["threshold"]["policy"] == "gamma:0.9"
    results = (run / "results.csv").read_text().splitlines()
    assert results[0].startswith("machine,section,")
    assert any(line.startswith("official score,") for line in results)


def test_report_is_self_contained(make_run):
    run = make_run()
    evaluate_run(run, threshold="best-f1")
    page = (run / "report.html").read_text()
    assert '<img src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'src="(?!data:)', page)
    assert not re.search(r"<link\b", page)
    assert "best-f1" in page and "optimistic" in page  # visible warning
    assert "epochs: 3" in page  # config.yaml
    assert "broken_clip.wav" in page  # skipped files
    assert "12.5" in page  # timing


def test_report_without_best_f1_has_no_optimism_warning(make_run):
    run = make_run()
    evaluate_run(run, threshold="fixed:0.0", plots=False)
    page = (run / "report.html").read_text()
    assert "optimistic" not in page
    assert "No plots" in page


def test_gamma_without_train_scores_names_the_file(make_run):
    run = make_run(train=False)
    with pytest.raises(EvaluationError, match="train_scores.csv"):
        evaluate_run(run, threshold="gamma", plots=False)
    # other policies work without it
    evaluate_run(run, threshold="best-f1", plots=False, report=False)


def test_missing_run_folder_and_scores(tmp_path: Path):
    with pytest.raises(EvaluationError, match="run folder not found"):
        evaluate_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="scores.csv"):
        evaluate_run(tmp_path / "empty")


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from soundwatch.cli import main

    monkeypatch.setattr(sys, "argv", ["soundwatch", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_evaluate_hand_made_run(make_run, monkeypatch, capsys):
    run = make_run()
    code, out, _ = _cli(monkeypatch, capsys, "evaluate", str(run), "--threshold",
                        "contamination:0.1", "--ci", "--n-boot", "50", "--no-plots")
    assert code == 0
    assert "official score" in out
    assert (run / "metrics.json").is_file() and (run / "report.html").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["ci"]["n_boot"] == 50


def test_cli_missing_run_folder_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "evaluate", str(tmp_path / "missing"))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "run folder not found" in lines[0]
