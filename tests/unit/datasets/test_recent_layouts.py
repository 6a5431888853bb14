"""The DCASE 2025 supplementary and DCASE 2026 two-channel layouts (datasets/recent.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundwatch.datasets import LAYOUTS, classify, scan
from soundwatch.datasets.recent import (
    TWO_CHANNEL_NAMES,
    channel_index,
    channel_names,
    parse_supplemental_name,
)
from soundwatch.errors import ConfigError

SR = 16000


def _wav(path: Path, channels: int = 1, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(seed).standard_normal((SR // 8, channels))
    sf.write(path, x.astype(np.float32), SR)
    return path


@pytest.mark.parametrize("name, expected", [
    ("section_00_machine_0001_.wav", ("00", "machine", "0001", {})),
    ("section_00_noise_0100_.wav", ("00", "noise", "0100", {})),
    ("section_01_noise_0003_loc_A.flac", ("01", "noise", "0003", {"loc": "A"})),
    ("section_00_source_train_normal_0000_a_1.wav", None),
    ("section_00_machine_x.wav", None),
    ("section_xx_machine_0001_.wav", None),
    ("machine_0001.wav", None),
])
def test_parse_supplemental_name(name, expected):
    parsed = parse_supplemental_name(name)
    if expected is None:
        assert parsed is None
    else:
        got = (parsed["section"], parsed["kind"], parsed["number"], parsed["attributes"])
        assert got == expected


def test_supplemental_clips_are_neither_train_nor_test(tmp_path):
    clip = classify(tmp_path / "ToyPet" / "supplemental" / "section_00_noise_0002_.wav")
    assert clip.layout == "dcase2025-supplemental" and clip.split == "supplemental"
    assert clip.machine == "ToyPet" and clip.section == "00" and clip.label == 0
    assert clip.attributes == {"supplemental": "noise"}
    # the same name outside a supplemental folder is not understood
    assert isinstance(classify(tmp_path / "ToyPet" / "train" / "section_00_noise_0002_.wav"), str)
    assert "dcase2025-supplemental" in LAYOUTS and "dcase2026-dev" in LAYOUTS


def test_two_channel_folders_get_the_2026_layouts(tmp_path):
    name = "section_00_source_{}_{}_0000_a_1.wav"
    _wav(tmp_path / "ToyCarEmu" / "train" / name.format("train", "normal"), channels=2)
    _wav(tmp_path / "ToyCarEmu" / "test" / name.format("test", "anomaly"), channels=2)
    _wav(tmp_path / "ToyCarEmu" / "test" / "section_00_0001.wav", channels=2)
    _wav(tmp_path / "fan" / "train" / name.format("train", "normal"), channels=1)
    _wav(tmp_path / "pump" / "train" / name.format("train", "normal"), channels=3)
    found = scan(tmp_path)
    layouts = {(c.machine, c.path.name): c.layout for c in found.clips}
    assert layouts[("ToyCarEmu", name.format("train", "normal"))] == "dcase2026-dev"
    assert layouts[("ToyCarEmu", "section_00_0001.wav")] == "dcase2026-eval"
    assert layouts[("fan", name.format("train", "normal"))] == "dcase-dev"
    assert layouts[("pump", name.format("train", "normal"))] == "dcase-dev"
    near_far = next(c for c in found.clips if c.layout == "dcase2026-dev")
    assert channel_names(near_far) == TWO_CHANNEL_NAMES == ("near", "far")
    assert channel_index(near_far, "near") == 0 and channel_index(near_far, "far") == 1
    assert channel_index(near_far, 1) == 1 and channel_index(near_far, "1") == 1
    mono = next(c for c in found.clips if c.machine == "fan")
    assert channel_names(mono) is None
    with pytest.raises(ConfigError, match="no channel named 'far'"):
        channel_index(mono, "far")


def test_unreadable_header_leaves_the_folder_alone(tmp_path):
    bad = tmp_path / "fan" / "train" / "section_00_source_train_normal_0000_a_1.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not audio")
    assert scan(tmp_path).clips[0].layout == "dcase-dev"
