"""The monitor's verdicts: sensor problems are never anomalies, sections pick thresholds."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from monitor_helpers import SR, write_clip


def test_silent_and_dead_channel_clips_are_sensor_verdicts(scorer, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR // 2, np.float32), SR, subtype="PCM_16")
    verdict = scorer.score_file("fan", silent)
    assert verdict.status == "sensor" and "silent" in verdict.status_reason
    assert verdict.decision == 0
    rng = np.random.default_rng(3)
    stereo = np.stack([0.9 * rng.standard_normal(SR // 2) / 4.5, np.zeros(SR // 2)], axis=1)
    dead = tmp_path / "dead.wav"
    sf.write(dead, stereo.astype(np.float32), SR, subtype="PCM_16")
    verdict = scorer.score_file("fan", dead)
    assert verdict.status == "sensor" and verdict.status_reason == "dead channel 1 of 2"
    assert verdict.decision == 0
    loud = scorer.score_file("fan", write_clip(tmp_path / "loud.wav", 0.9, seed=5))
    assert loud.status == "ok" and loud.status_reason == "" and loud.decision == 1


def test_a_section_with_its_own_rule_decides_its_clips(scorer, tmp_path):
    from dataclasses import replace

    from soundwatch.decisions import Decider

    loaded = scorer.machines["fan"]
    base = loaded.decider
    strict = Decider(-1.0, base.train_scores, base.policy)  # everything above: anomaly
    loaded.decider = replace(base, sections={"07": strict})
    try:
        clip = write_clip(tmp_path / "section_07_0001.wav", 0.1, seed=8)
        other = write_clip(tmp_path / "section_03_0001.wav", 0.1, seed=8)
        v7, v3 = scorer.score_file("fan", clip), scorer.score_file("fan", other)
        assert v7.section == "07" and v7.threshold == -1.0 and v7.decision == 1
        assert v3.section is None and v3.threshold == base.threshold and v3.decision == 0
    finally:
        loaded.decider = base
