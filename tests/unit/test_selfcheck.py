"""Tests of soundwatch.selfcheck: false-alarm estimate, member agreement, spread, warnings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundwatch.selfcheck import (
    SelfCheck,
    at_threshold,
    false_alarm_estimate,
    member_agreement,
    run_self_checks,
    self_check,
    spectral_spread,
)

SR = 16000


def test_false_alarm_estimate_counts_and_exact_interval():
    scores = np.arange(100, dtype=float)  # 0..99
    k, n, rate, (lo, hi) = false_alarm_estimate(scores, 89.5)
    assert (k, n) == (10, 100) and rate == pytest.approx(0.10)
    # Clopper-Pearson 95 % for 10/100 (R: binom.test(10, 100)$conf.int)
    assert lo == pytest.approx(0.04900469, abs=1e-6)
    assert hi == pytest.approx(0.17622260, abs=1e-6)


def test_false_alarm_estimate_with_few_clips_is_wide_and_ignores_nan():
    k, n, rate, (lo, hi) = false_alarm_estimate([1.0, 2.0, np.nan, 3.0, 4.0, 5.0, 6.0, 7.0,
                                                 8.0], 10.0)
    assert (k, n, rate) == (0, 8, 0.0)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 8))  # 0.31: nothing known
    assert np.isnan(false_alarm_estimate([], 1.0)[2])


def test_member_agreement_spearman():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    assert member_agreement([a, 2 * a + 5]) == pytest.approx(1.0)  # monotone: ranks equal
    assert member_agreement([a, -a]) == pytest.approx(-1.0)
    three = member_agreement([a, a ** 3, -a])  # pairs: 1, -1, -1
    assert three == pytest.approx(-1 / 3)
    unrelated = member_agreement([a, rng.normal(size=50)])
    assert abs(unrelated) < 0.35
    assert member_agreement([a]) is None  # a single detector
    assert member_agreement([a, np.ones(50)]) is None  # constant member: undefined
    assert member_agreement([a[:2], a[:2]]) is None


def _tone(seed: int, freq: float, amp: float, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    return amp * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)


def test_spectral_spread_tells_copies_from_varied_recordings():
    steady = np.random.default_rng(1).standard_normal(SR * 8) * 0.1
    copies = [steady[i * SR:(i + 1) * SR] for i in range(8)]  # one recording cut in eight
    varied = [_tone(i, 200 + 150 * i, 0.05 * (i + 1)) for i in range(8)]
    same, _ = spectral_spread(copies, SR)
    differ, level_range = spectral_spread(varied, SR)
    assert same < 0.6 < differ
    assert level_range == pytest.approx(20 * np.log10(8), abs=0.5)  # + the noise floor
    assert spectral_spread(copies[:1], SR) is None


def test_self_check_warns_on_few_clips_and_says_what_helps():
    check = self_check(np.linspace(0, 1, 8), threshold=0.95)
    assert check.clips == 8 and check.trust == "low"
    assert check.members == 0 and check.member_agreement is None
    text = " ".join(check.warnings)
    assert "Only 8 normal training clip(s)" in text and "operating state" in text


def test_self_check_flags_uniform_data_and_high_false_alarms():
    rng = np.random.default_rng(2)
    steady = rng.standard_normal(SR * 10) * 0.1
    copies = [steady[i * SR:(i + 1) * SR] for i in range(10)]
    scores = rng.normal(size=200)
    check = self_check(scores, threshold=0.0, signals=copies, sr=SR)
    assert check.clips == 200 and check.clips_measured == 10
    assert check.spread_db is not None and check.spread_db < 0.6
    assert 0.4 < check.false_alarm_rate < 0.6
    assert check.trust == "caution"
    text = " ".join(check.warnings)
    assert "sound almost alike" in text and "false alarms" in text
    good = self_check(scores, threshold=float(np.quantile(scores, 0.99)), sr=SR,
                      signals=[_tone(i, 200 + 150 * i, 0.1) for i in range(10)])
    assert good.trust == "ok" and good.warnings == []


def test_self_check_of_an_ensemble_reports_agreement_and_contradiction():
    rng = np.random.default_rng(3)
    a = rng.normal(size=60)
    agree = self_check(a, 3.0, member_scores=[a, a + 0.01 * rng.normal(size=60)])
    assert agree.members == 2 and agree.member_agreement > 0.95 and agree.trust == "ok"
    contra = self_check(a, 3.0, member_scores=[a, -a])
    assert contra.member_agreement == pytest.approx(-1.0)
    assert any("disagree" in w for w in contra.warnings) and contra.trust == "caution"


def test_round_trip_through_run_json_and_new_threshold():
    scores = np.arange(50, dtype=float)
    check = self_check(scores, threshold=49.5)
    info = json.loads(json.dumps({"machines": {"pump": {"train_clips": 50,
                                                        "self_check": check.to_dict()},
                                              "old": {"train_clips": 3}}}))
    back = run_self_checks(info)
    assert list(back) == ["pump"]
    assert isinstance(back["pump"], SelfCheck) and back["pump"].false_alarms == 0
    assert back["pump"].false_alarm_ci == pytest.approx(check.false_alarm_ci)
    lower = at_threshold(back["pump"], scores, 39.5)
    assert lower.false_alarms == 10 and lower.threshold == 39.5
    assert any("10 of 50" in w for w in lower.warnings)
    assert run_self_checks({}) == {}
