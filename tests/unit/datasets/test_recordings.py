"""collect_recordings: any files and folders of recordings to score."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from soundwatch.datasets import ANY_LAYOUT, collect_recordings
from soundwatch.errors import ConfigError, DatasetError


def _wav(path, fmt="WAV"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(1600, np.float32), 16000, format=fmt)
    return path


def test_any_names_get_the_machine_and_test_split(tmp_path):
    a = _wav(tmp_path / "in" / "my recording.wav")
    b = _wav(tmp_path / "in" / "sub" / "x.flac", "FLAC")
    _wav(tmp_path / "in" / ".hidden.wav")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    clips = collect_recordings([tmp_path / "in"], ["fan", "pump"], machine="fan")
    assert [c.path for c in clips] == [a, b]
    assert {(c.machine, c.split, c.label, c.layout) for c in clips} == {
        ("fan", "test", None, ANY_LAYOUT)}


def test_a_folder_named_like_a_machine_says_which(tmp_path):
    _wav(tmp_path / "pump" / "anything.wav")
    clips = collect_recordings([tmp_path], ["fan", "pump"])
    assert [c.machine for c in clips] == ["pump"]


def test_the_only_machine_needs_no_option_and_several_do(tmp_path):
    _wav(tmp_path / "in" / "a.wav")
    assert collect_recordings([tmp_path / "in"], ["fan"])[0].machine == "fan"
    with pytest.raises(ConfigError, match="pick one with --machine"):
        collect_recordings([tmp_path / "in"], ["fan", "pump"])
    with pytest.raises(ConfigError, match="no trained detector for 'drill'"):
        collect_recordings([tmp_path / "in"], ["fan", "pump"], machine="drill")


def test_known_layouts_keep_their_metadata_and_test_split(tmp_path):
    root = tmp_path / "data"
    _wav(root / "fan" / "train" / "normal_id_00_00000000.wav")
    test = _wav(root / "fan" / "test" / "anomaly_id_02_00000001.wav")
    clips = collect_recordings([root], ["fan"])
    assert [c.path for c in clips] == [test], "a dataset folder gives its test split"
    assert (clips[0].label, clips[0].section, clips[0].layout) == (1, "02", "dcase2020")
    # a file given by name is scored whatever its split
    one = collect_recordings([root / "fan" / "train" / "normal_id_00_00000000.wav"], ["fan"])
    assert one[0].split == "train"


def test_known_layout_clips_of_untrained_machines_keep_their_machine(tmp_path):
    # a run trained on valve only, given a whole dataset: the fan clips stay fan clips
    # (the scorer leaves them out), never scored by the valve detector
    root = tmp_path / "data"
    _wav(root / "fan" / "test" / "anomaly_id_02_00000001.wav")
    _wav(root / "valve" / "test" / "normal_id_00_00000000.wav")
    clips = collect_recordings([root], ["valve"])
    assert sorted(c.machine for c in clips) == ["fan", "valve"]
    assert collect_recordings([root], ["valve"], machine="valve")[0].machine == "fan"


def test_evaluation_names_get_the_chosen_machine(tmp_path):
    _wav(tmp_path / "incoming" / "section_00_0001.wav")
    clips = collect_recordings([tmp_path / "incoming"], ["fan", "pump"], machine="fan")
    assert clips[0].machine == "fan" and clips[0].section == "00"


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        collect_recordings([tmp_path / "gone"], ["fan"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio files found"):
        collect_recordings([tmp_path / "empty"], ["fan"])
