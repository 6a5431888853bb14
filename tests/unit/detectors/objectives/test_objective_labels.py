"""Auxiliary classes of a clip (machine, section, attributes) and their labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundwatch.datasets.clip import Clip
from soundwatch.detectors.objectives import auxiliary_labels, clip_class_key
from soundwatch.errors import ConfigError


def _clip(section, attributes=None, domain="source", machine="fan", machine_id=None):
    return Clip(Path("x.wav"), machine, "train", 0, section, domain, machine_id, attributes or {})


def test_class_key_uses_section_and_attributes_and_falls_back():
    assert clip_class_key(_clip("00", {"vel": "6", "loc": "A"})) == "fan|00|loc=A|vel=6"
    assert clip_class_key(_clip("01")) == "fan|01"
    assert clip_class_key(_clip(None, machine_id="id_02")) == "fan|id_02"
    assert clip_class_key(_clip(None), ("section",)) == "all"
    with pytest.raises(ConfigError, match="unknown field"):
        clip_class_key(_clip("00"), ("colour",))


def test_auxiliary_labels_index_sorted_class_names():
    clips = [_clip("01"), _clip("00", {"a": "1"}), _clip("01"), _clip("00", {"a": "2"})]
    labels, names = auxiliary_labels(clips)
    assert names == ["fan|00|a=1", "fan|00|a=2", "fan|01"]
    assert labels.tolist() == [2, 0, 2, 1]


def test_domain_and_machine_id_fields():
    assert clip_class_key(_clip("00", domain="target"), ("machine", "domain")) == "fan|target"
    assert clip_class_key(_clip(None, machine_id="id_02"), ("machine", "machine_id")) == (
        "fan|id_02")
    labels, names = auxiliary_labels([_clip("00", domain="target"), _clip("00")], ("domain",))
    assert names == ["source", "target"] and labels.tolist() == [1, 0]
