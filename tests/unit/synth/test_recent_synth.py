"""The DCASE 2025 (supplementary) and DCASE 2026 (near/far) synthetic writers."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from soundwatch.datasets import scan
from soundwatch.datasets.recent import supplemental_clips
from soundwatch.errors import ConfigError
from soundwatch.synth import recent
from soundwatch.synth.machines import render_machine_parts
from soundwatch.synth.speech import espeak_available

SR = 8000
SMALL = dict(machines="fan", train_source=2, train_target=1, test_per_group=1, seconds=0.25,
             sr=SR)


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.wav"))}


def test_dcase2025_set_has_supplemental_clean_and_noise_clips(tmp_path):
    root = recent.synth_dcase2025(tmp_path / "s", supplemental=2, workers=1, **SMALL)
    found = scan(root)
    assert found.layouts == {"dcase-dev": 7, "dcase2025-supplemental": 4}
    sup = sorted(c.path.name for c in found.clips if c.split == "supplemental")
    assert sup == ["section_00_machine_0001_.wav", "section_00_machine_0002_.wav",
                   "section_00_noise_0001_.wav", "section_00_noise_0002_.wav"]
    info = json.loads((root / "dataset.json").read_text())
    assert info["layout"] == "dcase2025" and info["total_clips"] == 11
    noise = supplemental_clips(found.clips, "fan", "noise")
    assert [c.path.name for c in noise] == sup[2:]
    assert len(supplemental_clips(found.clips, "fan")) == 4
    assert supplemental_clips(found.clips, "valve") == []
    # the clean machine clip is the machine alone: no factory background in it
    plan = next(p for p in recent._plan_supplemental("fan", 2, 0) if p.kind == "machine")
    rng = np.random.default_rng(recent.clip_seed(0, plan.seed_key, 1))
    machine, _ = render_machine_parts("fan", "source", plan.attributes, None, 0.0, 0.25, SR, rng)
    written, _ = sf.read(root / plan.rel_path)
    assert np.corrcoef(written, machine)[0, 1] > 0.999


def test_dcase2026_set_is_two_channel_and_deterministic(tmp_path):
    a = recent.synth_dcase2026(tmp_path / "a", workers=1, **SMALL)
    b = recent.synth_dcase2026(tmp_path / "b", workers=2, **SMALL)
    assert _digest(a) == _digest(b) and len(_digest(a)) == 7
    found = scan(a)
    assert found.layouts == {"dcase2026-dev": 7}
    x, sr = sf.read(next(a.rglob("*.wav")))
    assert sr == SR and x.shape == (SR // 4, 2)
    assert np.std(x[:, 1]) < np.std(x[:, 0])  # the far microphone hears less machine


@pytest.mark.parametrize("near, far", [(6.0, -6.0), (0.0, -12.0)])
def test_near_and_far_snrs_are_exact(near, far):
    rng = np.random.default_rng(0)
    machine = rng.standard_normal(4000)
    env = rng.standard_normal(4000) * 3.0
    y = recent.mix_near_far(machine, env, near, far, SR, np.random.default_rng(1))
    delay = int(round(recent.FAR_DELAY_S * SR))
    far_machine = np.concatenate([np.zeros(delay), machine[:-delay]])
    far_machine = far_machine * 10 ** (recent.FAR_MACHINE_DB / 20)

    def snr(sig, total):
        return 10 * np.log10(np.sum(sig ** 2) / np.sum((total - sig) ** 2))

    assert snr(machine, y[:, 0]) == pytest.approx(near, abs=0.01)
    assert snr(far_machine, y[:, 1]) == pytest.approx(far, abs=0.01)
    # the environment reaches both microphones: the far channel is a noise reference
    assert np.corrcoef(y[:, 0] - machine, y[:, 1] - far_machine)[0, 1] > 0.9


def test_bad_parameters_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--far-snr-db.*must not exceed"):
        recent.synth_dcase2026(tmp_path / "x", near_snr_db=0, far_snr_db=3, **SMALL)
    with pytest.raises(ConfigError, match="--snr-db"):
        recent.synth_dcase2025(tmp_path / "y", snr_db=float("nan"), **SMALL)
    with pytest.raises(ConfigError, match="--supplemental"):
        recent.synth_dcase2025(tmp_path / "z", supplemental=-1, **SMALL)


@pytest.mark.skipif(not espeak_available(),
                    reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_dcase2026_speech_reaches_both_microphones(tmp_path):
    quiet = recent.synth_dcase2026(tmp_path / "q", workers=1, **SMALL)
    talk = recent.synth_dcase2026(tmp_path / "t", speech_snr_db=-10.0, workers=1, **SMALL)
    name = next(p.relative_to(quiet) for p in quiet.rglob("*.wav"))
    a, _ = sf.read(quiet / name)
    b, _ = sf.read(talk / name)
    for ch in (0, 1):  # the speech is part of the environment both microphones hear
        assert np.abs(a[:, ch] - b[:, ch]).max() > 0.01
    assert json.loads((talk / "dataset.json").read_text())["parameters"]["speech_snr_db"] == -10
