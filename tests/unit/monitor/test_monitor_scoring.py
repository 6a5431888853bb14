"""The scoring core: runs loaded once, verdicts from the decisions module, machine guessing."""

from __future__ import annotations

import os

import numpy as np
import pytest
from monitor_helpers import write_clip

from soundwatch.errors import AudioError, ConfigError, DetectorError
from soundwatch.monitor.feed import plan_feed
from soundwatch.monitor.scoring import MachineScorer, file_key, guess_machine


def test_scorer_loads_every_machine(scorer, monitor_run):
    assert sorted(scorer.machines) == ["fan", "pump"]
    facts = scorer.machines["fan"].describe()
    assert facts["detector"] == "mahalanobis" and facts["run"] == str(monitor_run)


def test_verdict_uses_the_decider(scorer, tmp_path):
    from soundwatch.run_decisions import load_deciders

    decider = load_deciders(scorer.machines["fan"].run)["fan"]
    for amp, expected in ((0.1, 0), (0.9, 1)):
        verdict = scorer.score_file("fan", write_clip(tmp_path / f"{amp}.wav", amp, seed=5))
        assert verdict.decision == expected == int(decider.decide([verdict.score])[0])
        assert verdict.threshold == decider.threshold
        assert verdict.percentile == decider.percentile([verdict.score])[0]
        assert verdict.seconds == 0.5


def test_score_file_errors(scorer, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("nope" * 100)
    with pytest.raises(AudioError, match="bad.wav"):
        scorer.score_file("fan", bad)
    with pytest.raises(DetectorError, match="unknown machine type"):
        scorer.score_file("valve", bad)


def test_non_finite_score_is_an_error(scorer, monkeypatch):
    det = scorer.machines["fan"].detector
    monkeypatch.setattr(det, "score_signals", lambda signals, sr, context=None: np.array([np.nan]))
    with pytest.raises(DetectorError, match="non-finite"):
        scorer.score_signal("fan", np.zeros(8000, np.float32), 16000)


def test_same_machine_in_two_runs(monitor_run):
    with pytest.raises(ConfigError, match="also in run"):
        MachineScorer([monitor_run, monitor_run])
    with pytest.raises(ConfigError):
        MachineScorer([])


def test_file_key_follows_content(tmp_path):
    path = write_clip(tmp_path / "a.wav", seed=1)
    size, mtime_ns, sha = file_key(path)
    assert size == path.stat().st_size and mtime_ns == path.stat().st_mtime_ns
    write_clip(path, seed=2)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    assert file_key(path)[2] != sha and file_key(path)[1] == mtime_ns
    with pytest.raises(AudioError):
        file_key(tmp_path / "missing.wav")


def test_guess_machine(tmp_path):
    machines = ["fan", "pump", "slider"]
    assert guess_machine("/x/fan/train/a.wav", machines) == "fan"
    assert guess_machine(tmp_path / "pump" / "a.wav", machines, tmp_path) == "pump"
    assert guess_machine("/x/section_00_slider_0001.wav", machines) == "slider"
    assert guess_machine("/anything.wav", ["fan"]) == "fan"
    with pytest.raises(ConfigError, match="--machine"):
        guess_machine("/x/a.wav", machines)
    with pytest.raises(ConfigError):
        guess_machine("/x/fan_pump.wav", machines)  # two names: ambiguous


def test_plan_feed_interleaves(tmp_path):
    for machine in ("fan", "pump"):
        for i in range(3 if machine == "fan" else 2):
            write_clip(tmp_path / machine / "test" / f"{i}.wav")
    (tmp_path / "fan" / "notes.txt").write_text("x")
    write_clip(tmp_path / "other" / "x.wav")  # no machine: left out
    plan = plan_feed([tmp_path], ["fan", "pump"])
    assert [m for _, m in plan] == ["fan", "pump", "fan", "pump", "fan"]
    assert plan_feed([tmp_path / "other"], ["fan", "pump"], machine="pump")[0][1] == "pump"
    with pytest.raises(ConfigError, match="not served"):
        plan_feed([tmp_path], ["fan"], machine="valve")
    with pytest.raises(ConfigError, match="no such"):
        plan_feed([tmp_path / "missing"], ["fan"])


def test_an_old_run_loads_each_detector_once(monitor_run, tmp_path, monkeypatch):
    """A run trained before decision rules were saved: its rule comes from the one loaded
    detector, which the scorer does not load a second time."""
    import shutil

    import soundwatch.detectors.loading as loading
    import soundwatch.monitor.scoring as scoring
    import soundwatch.run_decisions as run_decisions

    old = tmp_path / "old_run"
    shutil.copytree(monitor_run, old)
    shutil.rmtree(old / "decisions")
    loads: list[str] = []
    real = loading.load_run_detector

    def counting(run, machine, *args, **kwargs):
        loads.append(machine)
        return real(run, machine, *args, **kwargs)

    monkeypatch.setattr(scoring, "load_run_detector", counting)
    monkeypatch.setattr(run_decisions, "load_run_detector", counting)
    loaded = MachineScorer([old])
    assert sorted(loads) == ["fan", "pump"]
    fan = loaded.machines["fan"]
    assert fan.decider.threshold == pytest.approx(fan.detector.threshold_)
    assert fan.decider.policy == "far:0.01"
