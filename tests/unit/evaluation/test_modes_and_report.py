"""Evaluation mode from the data, the 2020 column name, the machine-centric report."""

from __future__ import annotations

import sys

import numpy as np

from soundwatch.evaluation.evaluate import evaluate_run, evaluate_scores


def _dcase2020(make_dcase_table):
    table = make_dcase_table(machines=("fan",), sections=("00", "02"))
    return table.assign(domain="source", layout="dcase2020",
                        machine_id=["id_" + s for s in table["section"]])


def test_dcase2020_layout_is_evaluated_in_2020_mode(make_dcase_table):
    result = evaluate_scores(_dcase2020(make_dcase_table), threshold="best-f1")
    assert result.mode == "dcase2020"
    assert not [w for w in result.warnings if "AUC (target)" in w]
    assert "auc" in result.sections.columns and "auc_target" not in result.sections.columns


def test_cli_names_the_2020_mean_correctly(make_run, make_dcase_table, monkeypatch, capsys):
    from soundwatch.cli import main

    run = make_run(_dcase2020(make_dcase_table))
    monkeypatch.setattr(sys, "argv", ["soundwatch", "evaluate", str(run), "--threshold",
                                      "best-f1", "--no-plots"])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "machine" in line and "AUC" in line)
    assert "hmean" not in header and header.split()[-1] == "mean"
    names = sorted(p.name for p in (run / "scores").glob("decision_result_*.csv"))
    assert names == ["decision_result_fan_id_00.csv", "decision_result_fan_id_02.csv"]


def test_report_is_machine_centric(make_run, make_dcase_table):
    table = make_dcase_table(machines=("fan", "pump"), sections=("00",))
    run = make_run(table)
    result = evaluate_run(run, threshold="gamma")
    page = (run / "report.html").read_text()
    flagged = result.scores[result.scores["decision"] == 1]
    assert 0 < len(flagged) < len(result.scores)
    for machine in ("fan", "pump"):
        assert f'id="m-{machine}"' in page
        n = int((flagged["machine"] == machine).sum())
        assert f"{n} of {int((result.scores['machine'] == machine).sum())} flagged" in page
    top = flagged.sort_values("score").iloc[-1]
    name = top["path"].rsplit("/", 1)[-1]
    assert name in page and "Every recording, flagged first" in page
    assert f"{top['threshold']:.4g}" in page, "threshold values shown"
    assert "Score distribution against training" in page
    assert (run / "plots" / "distribution_fan.png").is_file()
    assert "DCASE metrics" in page and "Official score" in page


def test_report_without_labels_has_no_metrics_but_decisions(make_run, make_dcase_table):
    table = make_dcase_table(machines=("fan",), sections=("00",)).assign(label=np.nan)
    run = make_run(table)
    result = evaluate_run(run, threshold="gamma", plots=False)
    page = (run / "report.html").read_text()
    assert "DCASE metrics" not in page and "carry no labels" in page
    assert f"{int(result.scores['decision'].sum())} of {len(table)} clip(s) flagged" in page


def test_training_curve_in_the_report(make_run):
    run = make_run()
    (run / "train_log").mkdir()
    (run / "train_log" / "fan.csv").write_text(
        "epoch,train_loss,val_loss\n0,1.0,1.1\n1,0.5,0.7\n2,0.3,0.6\n")
    evaluate_run(run, threshold="gamma")
    assert (run / "plots" / "training_fan.png").is_file()
    assert "Training curve" in (run / "report.html").read_text()
    for png in (run / "plots").glob("*.png"):
        png.unlink()
    evaluate_run(run, threshold="gamma", plots=False)  # --no-plots: no figure at all
    assert not list(run.rglob("*.png"))
    assert "Training curve" not in (run / "report.html").read_text()
