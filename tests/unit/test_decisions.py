"""Decision rules: policies, the false-alarm interval, sections and their fallback, tables."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from soundwatch.decisions import (
    DEFAULT_POLICY,
    Decider,
    decision_path,
    read_decider,
    save_decider,
    section_of_path,
)
from soundwatch.errors import EvaluationError
from soundwatch.scores import add_decisions, add_status, validate_scores_table
from soundwatch.sensor import SensorCheck
from soundwatch.thresholds import (
    MIN_SECTION_TRAIN,
    false_alarm,
    far_threshold,
    gamma_threshold,
    parse_threshold,
)


def test_default_policy_is_a_false_alarm_target():
    assert DEFAULT_POLICY == "far:0.01"
    spec = parse_threshold("far")
    assert spec.policy == "far" and spec.value == 0.01 and spec.needs_train_scores
    for bad in ("far:0", "far:1", "far:-0.1", "far:x"):
        with pytest.raises(EvaluationError, match="--threshold"):
            parse_threshold(bad)


def test_far_threshold_allows_at_most_the_target_share_above_it():
    x = np.arange(1000, dtype=float)
    for rate in (0.001, 0.01, 0.05, 0.2):
        thr = far_threshold(x, rate)
        assert np.sum(x > thr) == int(rate * 1000)
    # fewer clips than 1/rate: nothing above, the threshold is the highest score
    assert far_threshold(np.array([3.0, 1.0, 2.0]), 0.01) == 3.0


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.2])
def test_a_flagged_clip_is_never_below_the_percentile_its_target_implies(rate):
    rng = np.random.default_rng(1)
    train = rng.gamma(2.0, size=75)
    decider = Decider.from_training_scores(train, f"far:{rate}")
    test = rng.gamma(2.0, size=2000)
    flagged = decider.decide(test) == 1
    assert flagged.any()
    assert decider.percentile(test)[flagged].min() >= 100 * (1 - rate)


def test_gamma_policy_states_its_real_cost():
    """The issue's slider: the gamma 0.9 rule puts many normal training clips above it."""
    rng = np.random.default_rng(0)
    train = np.r_[rng.gamma(2.0, size=66), rng.gamma(2.0, size=9) + 6.0]
    decider = Decider.from_training_scores(train, "gamma:0.9")
    assert decider.threshold == pytest.approx(gamma_threshold(train, 0.9)[0])
    far = decider.false_alarm
    assert far.exceed == int(np.sum(train > decider.threshold)) and far.n == 75
    assert far.estimate == pytest.approx((far.exceed + 1) / 76)
    assert far.target is None


def test_fixed_and_contamination_policies():
    x = np.arange(101, dtype=float)
    fixed = Decider.from_training_scores(x, "fixed:42.5")
    assert fixed.threshold == 42.5 and not fixed.fitted
    assert fixed.false_alarm.estimate == pytest.approx(58 / 101)  # not refitted: k / n
    cont = Decider.from_training_scores(x, "contamination:0.1")
    assert cont.threshold == pytest.approx(90.0) and cont.target == 0.1
    with pytest.raises(EvaluationError, match="test labels"):
        Decider.from_training_scores(x, "best-f1")


@pytest.mark.parametrize("k,n", [(0, 8), (3, 75), (9, 75), (75, 75), (10, 1000)])
def test_false_alarm_interval_is_clopper_pearson(k, n):
    train = np.r_[np.zeros(n - k), np.full(k, 2.0)]
    far = false_alarm(train, 1.0, fitted=False)
    exact = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert (far.exceed, far.n) == (k, n)
    assert far.low == pytest.approx(exact.low, abs=1e-9)
    assert far.high == pytest.approx(exact.high, abs=1e-9)
    assert far.estimate == pytest.approx(k / n)


def test_eight_training_clips_cannot_confirm_one_percent():
    decider = Decider.from_training_scores(np.arange(8.0), "far:0.01")
    far = decider.false_alarm
    assert decider.threshold == 7.0 and far.exceed == 0
    assert far.estimate == pytest.approx(1 / 9)
    assert far.high == pytest.approx(1 - 0.025 ** (1 / 8))  # 36.9 %
    assert far.too_few
    assert "0 of 8" in far.describe()


def _sectioned(n_a: int, n_b: int, n_c: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    scores = np.r_[rng.normal(0, 1, n_a), rng.normal(10, 1, n_b), rng.normal(5, 1, n_c)]
    return scores, ["00"] * n_a + ["01"] * n_b + ["02"] * n_c


def test_sections_get_their_own_threshold_and_small_ones_fall_back(caplog):
    scores, sections = _sectioned(40, 40, 2)
    with caplog.at_level(logging.WARNING, logger="soundwatch"):
        decider = Decider.from_training_scores(scores, "far:0.05", sections)
    assert sorted(decider.sections) == ["00", "01"]
    assert decider.fallback == ("02",) and "02" in caplog.text
    assert decider.for_section("02") is decider and decider.for_section(None) is decider
    assert decider.for_section("00").threshold < 5 < decider.for_section("01").threshold
    # a score of 6 is anomalous in section 00, normal in 01 and decided by the machine's in 02
    decided = decider.decide([6.0, 6.0, 6.0], ["00", "01", "02"])
    assert decided.tolist() == [1, 0, int(6.0 > decider.threshold)]
    pct = decider.percentile([6.0, 6.0], ["00", "01"])
    assert pct[0] == 100.0 and pct[1] == 0.0
    assert decider.thresholds(2, ["00", "01"]).tolist() == [
        decider.sections["00"].threshold, decider.sections["01"].threshold]


def test_one_section_or_none_gives_a_machine_rule():
    scores, _ = _sectioned(40, 0, 0)
    assert not Decider.from_training_scores(scores, "far:0.05", ["00"] * 40).sections
    assert not Decider.from_training_scores(scores, "far:0.05").sections
    assert MIN_SECTION_TRAIN >= 10


def test_rule_round_trips_and_refits_with_another_policy(tmp_path):
    scores, sections = _sectioned(30, 30, 3)
    decider = Decider.from_training_scores(scores, "far:0.1", sections, sample_rates=[16000])
    path = save_decider(tmp_path, "fan", decider)
    assert path == decision_path(tmp_path, "fan")
    assert json.loads(path.read_text())["machine"] == "fan"
    back = read_decider(tmp_path, "fan")
    test = np.linspace(-3, 14, 50)
    secs = (["00", "01", "02", None] * 13)[:50]
    assert back.decide(test, secs).tolist() == decider.decide(test, secs).tolist()
    assert np.allclose(back.percentile(test, secs), decider.percentile(test, secs))
    assert back.sample_rates == (16000,) and back.fallback == ("02",)
    other = back.with_policy("far:0.2")
    assert other.policy == "far:0.2" and sorted(other.sections) == ["00", "01"]
    assert other.sections["00"].threshold < back.sections["00"].threshold
    assert read_decider(tmp_path, "pump") is None


def test_section_of_path_reads_every_layout():
    assert section_of_path("x/section_03_target_test_anomaly_0001.wav") == "03"
    assert section_of_path("fan/test/anomaly_id_04_00000012.wav") == "04"
    assert section_of_path("mimii/fan/id_02/abnormal/00000001.wav") == "02"
    assert section_of_path("pumpA_2026-01-03.wav") is None


def _table(scores, sections, status=None):
    df = pd.DataFrame({"path": [f"c{i}.wav" for i in range(len(scores))], "machine": "fan",
                       "section": sections, "domain": None, "split": "test",
                       "label": np.nan, "score": scores})
    if status is not None:
        df = add_status(df, status)
    return validate_scores_table(df)


def test_add_decisions_uses_sections_and_never_flags_sensor_clips():
    scores, sections = _sectioned(40, 40, 0)
    decider = Decider.from_training_scores(scores, "far:0.05", sections)
    checks = [SensorCheck(), SensorCheck("sensor", "silent (peak -inf dBFS)"), SensorCheck()]
    table = add_decisions(_table([6.0, 50.0, 6.0], ["00", "01", "01"], checks), {"fan": decider})
    assert table["decision"].tolist() == [1, 0, 0]  # 50 is far above, but a sensor clip
    assert table["status"].tolist() == ["ok", "sensor", "ok"]
    assert table["status_reason"].tolist() == ["", "silent (peak -inf dBFS)", ""]
    assert table["threshold"].tolist()[1:] == [decider.sections["01"].threshold] * 2
    cols = list(table.columns)
    assert cols[7:12] == ["threshold", "decision", "percentile", "status", "status_reason"]
    bad = table.copy()
    bad.loc[1, "decision"] = 1
    with pytest.raises(EvaluationError, match="sensor or error status"):
        validate_scores_table(bad)
    bad = table.copy()
    bad.loc[0, "status"] = "broken"
    with pytest.raises(EvaluationError, match="status must be one of"):
        validate_scores_table(bad)
