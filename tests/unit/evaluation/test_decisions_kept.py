"""evaluate keeps the scoring's decisions; other thresholds are only suggested."""

from __future__ import annotations

import numpy as np

from soundwatch.decisions import Decider
from soundwatch.evaluation.evaluate import evaluate_run, evaluate_scores
from soundwatch.scores import add_decisions, add_status, read_scores_table, write_scores_table
from soundwatch.sensor import SensorCheck


def _decided(make_table):
    """Two sections; section 01 has 2 training clips (the issue's valve id_04)."""
    rng = np.random.default_rng(4)
    train_rows = [("valve", "00", "source", 0, v) for v in rng.gamma(2.0, size=40)]
    train_rows += [("valve", "01", "source", 0, v) for v in (1.0, 1.0000001)]
    train = make_table(train_rows)
    test_rows = [("valve", s, "source", lab, v) for s in ("00", "01") for lab in (0, 1)
                 for v in (rng.gamma(2.0, size=6) + 5.0 * lab)]
    test = make_table(test_rows)
    decider = Decider.from_training_scores(train["score"], "far:0.05", train["section"])
    checks = [SensorCheck("sensor", "silent") if i == 3 else SensorCheck()
              for i in range(len(test))]
    return add_decisions(add_status(test, checks), {"valve": decider}), train, decider


def test_evaluate_flags_exactly_what_the_scoring_flagged(make_table):
    scored, train, decider = _decided(make_table)
    assert decider.fallback == ("01",), "section 01 is decided by the machine's threshold"
    for asked in (None, "gamma", "contamination:0.3", "best-f1"):
        result = evaluate_scores(scored, train, threshold=asked)
        assert result.scores["decision"].tolist() == scored["decision"].tolist()
        assert result.scores["threshold"].tolist() == scored["threshold"].tolist()
        assert result.metrics["decision"]["source"] == "scoring"
        assert result.metrics["counts"]["flagged"] == int(scored["decision"].sum())
        assert result.metrics["counts"]["sensor"] == 1
    result = evaluate_scores(scored, train, threshold="gamma", policy="far:0.05")
    assert str(result.thresholds.spec) == "far:0.05"
    assert result.thresholds.values[("valve", "01")] == decider.threshold
    tips = result.metrics["suggestions"]
    assert set(tips) == {"gamma:0.9", "best-f1"}
    assert tips["gamma:0.9"]["status"].startswith("suggestion (not applied")
    assert tips["best-f1"]["optimistic"] is True and "f1" in tips["best-f1"]


def test_a_table_without_decisions_is_decided_here_and_says_so(make_table):
    scored, train, _ = _decided(make_table)
    bare = scored.drop(columns=["threshold", "decision", "percentile"])
    result = evaluate_scores(bare, train)
    assert result.metrics["decision"]["source"].startswith("evaluate")
    assert str(result.thresholds.spec) == "far:0.01"
    assert result.scores.loc[3, "decision"] == 0, "a sensor clip is never an anomaly"


def test_evaluate_run_keeps_the_scoring_decisions(make_table, make_run):
    scored, train, _ = _decided(make_table)
    run = make_run(scored)
    write_scores_table(train, run / "scores" / "train_scores.csv")
    result = evaluate_run(run, threshold="gamma", plots=False, report=False)
    written = read_scores_table(run / "scores" / "scores.csv")
    assert result.scores["decision"].tolist() == written["decision"].tolist()
    assert "gamma:0.9" in result.metrics["suggestions"]
