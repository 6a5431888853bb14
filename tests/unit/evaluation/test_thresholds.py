"""Threshold policies: parsing, gamma, best-F1, contamination, fixed, per-section fitting."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.stats

from soundwatch.errors import EvaluationError
from soundwatch.thresholds import (
    apply_thresholds,
    best_f1_threshold,
    contamination_threshold,
    fit_thresholds,
    gamma_threshold,
    parse_threshold,
)


@pytest.mark.parametrize(
    ("text", "policy", "value"),
    [("gamma", "gamma", 0.9), ("gamma:0.95", "gamma", 0.95), ("best-f1", "best-f1", None),
     ("best_f1", "best-f1", None), ("fixed:0.5", "fixed", 0.5), ("fixed:-2", "fixed", -2.0),
     ("contamination:0.1", "contamination", 0.1)],
)
def test_parse_threshold(text, policy, value):
    spec = parse_threshold(text)
    assert spec.policy == policy and spec.value == value


@pytest.mark.parametrize("text", ["", "median", "fixed", "fixed:abc", "contamination:1.5",
                                  "contamination", "gamma:2", "best-f1:0.3", "fixed:nan"])
def test_parse_threshold_rejects(text):
    with pytest.raises(EvaluationError, match="--threshold"):
        parse_threshold(text)


def test_only_best_f1_is_flagged_optimistic():
    assert parse_threshold("best-f1").optimistic
    assert not parse_threshold("gamma").optimistic


def test_gamma_threshold_is_fitted_gamma_ppf_90():
    rng = np.random.default_rng(0)
    x = rng.gamma(shape=2.0, scale=1.0, size=2000)
    thr, params = gamma_threshold(x)
    a, loc, scale = scipy.stats.gamma.fit(x)
    assert thr == pytest.approx(scipy.stats.gamma.ppf(0.9, a, loc=loc, scale=scale))
    assert params["a"] == pytest.approx(a)
    # close to the true distribution's 90th percentile
    assert thr == pytest.approx(scipy.stats.gamma.ppf(0.9, 2.0), abs=0.3)


def test_gamma_threshold_on_constant_scores_falls_back_with_warning(caplog):
    with caplog.at_level(logging.WARNING):
        thr, params = gamma_threshold(np.full(10, 3.0))
    assert thr == 3.0 and params == {}
    assert "empirical" in caplog.text


def test_best_f1_on_separable_set_is_the_gap_midpoint():
    thr, f1 = best_f1_threshold(np.array([0, 0, 0, 1, 1]), np.array([0.0, 1.0, 2.0, 5.0, 6.0]))
    assert thr == pytest.approx(3.5)
    assert f1 == pytest.approx(1.0)


def test_best_f1_matches_brute_force():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60)
    s = rng.normal(size=60) + y
    thr, f1 = best_f1_threshold(y, s)

    def f1_at(t):
        d = s > t
        tp = np.sum(d & (y == 1))
        return 2 * tp / (d.sum() + y.sum())

    brute = max(f1_at(t) for t in np.r_[s, s.min() - 1])
    assert f1 == pytest.approx(brute)
    assert f1_at(thr) == pytest.approx(f1)


def test_contamination_is_training_quantile():
    x = np.arange(101, dtype=float)  # 0 .. 100
    assert contamination_threshold(x, 0.1) == pytest.approx(90.0)
    assert contamination_threshold(x, 0.25) == pytest.approx(75.0)


def test_fit_thresholds_per_section_and_machine_fallback(make_table):
    test = make_table([("fan", "00", "source", 0, 1.0), ("fan", "01", "source", 0, 1.0),
                       ("pump", "00", "source", 0, 1.0)])
    train = make_table([("fan", "00", "source", 0, v) for v in range(21)]
                       + [("fan", "01", "source", 0, 100.0)]
                       + [("pump", "00", "source", 0, v) for v in (0, 10)])
    th = fit_thresholds("contamination:0.1", test, train)
    assert th.values[("fan", "00")] == pytest.approx(18.0)
    # fan 01 has one training score (< MIN_SECTION_TRAIN): fitted on all fan training scores
    fan_all = np.r_[np.arange(21.0), 100.0]
    assert th.values[("fan", "01")] == pytest.approx(np.quantile(fan_all, 0.9))
    assert th.details[("fan", "01")]["fitted_on"] == "machine"
    assert th.values[("pump", "00")] == pytest.approx(9.0)


def test_fit_thresholds_needs_training_scores_of_each_machine(make_table):
    test = make_table([("valve", "00", "source", 0, 1.0)])
    train = make_table([("fan", "00", "source", 0, 1.0), ("fan", "00", "source", 0, 2.0)])
    with pytest.raises(EvaluationError, match="valve"):
        fit_thresholds("gamma", test, train)
    with pytest.raises(EvaluationError, match="training"):
        fit_thresholds("gamma", test, None)


def test_fixed_and_apply_use_strictly_greater(make_table):
    test = make_table([("fan", "00", "source", 0, 0.5), ("fan", "00", "source", 1, 0.6)])
    th = fit_thresholds("fixed:0.5", test)
    decided = apply_thresholds(test, th)
    assert decided["decision"].tolist() == [0, 1]


def test_best_f1_per_section(make_table):
    test = make_table([("fan", "00", "source", 0, 0.0), ("fan", "00", "source", 1, 1.0),
                       ("fan", "01", "source", 0, 10.0), ("fan", "01", "source", 1, 20.0)])
    th = fit_thresholds("best-f1", test)
    assert th.values[("fan", "00")] == pytest.approx(0.5)
    assert th.values[("fan", "01")] == pytest.approx(15.0)
