"""Plain folders of recordings as training data (layout ``folders``), known layouts first."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from soundwatch.datasets.clip import ANOMALY, NORMAL
from soundwatch.datasets.discovery import LAYOUTS
from soundwatch.datasets.folders import (
    FOLDER_LAYOUT,
    classify_plain,
    discover_training,
    layouts_hint,
)
from soundwatch.errors import DatasetError

PUMP_DAYS = [f"pumpA_2026-01-0{d}.wav" for d in range(1, 9)]


def _rel(clips, root: Path) -> dict[str, tuple[str, str | None, int | None]]:
    return {c.path.relative_to(root).as_posix(): (c.machine, c.split, c.label) for c in clips}


def test_classify_plain_is_pure_and_reads_every_shape():
    assert classify_plain(("a.wav",), "train", "pumpA").machine == "pumpA"
    assert "--machine" in classify_plain(("a.wav",), "train", None)
    sub = classify_plain(("pumpB", "2026", "a.wav"), "data", None)
    assert (sub.machine, sub.split, sub.label, sub.layout) == ("pumpB", "train", None,
                                                              FOLDER_LAYOUT)
    normal = classify_plain(("normal", "a.wav"), "pumpA", None)
    assert (normal.machine, normal.split, normal.label) == ("pumpA", "train", NORMAL)
    bad = classify_plain(("fan", "Abnormal", "x.wav"), "data", None)
    assert (bad.machine, bad.split, bad.label) == ("fan", "test", ANOMALY)
    # digit folders are days or units here, never labels
    day = classify_plain(("fan", "1", "x.wav"), "data", None)
    assert (day.machine, day.split, day.label) == ("fan", "train", None)


def test_one_machine_with_machine_option(make_tree):
    root = make_tree([f"train/{n}" for n in PUMP_DAYS] + ["train/more/extra.flac"])
    clips = discover_training(root / "train", "pumpA")
    assert len(clips) == 9
    assert {(c.machine, c.split, c.label, c.layout) for c in clips} == {
        ("pumpA", "train", None, FOLDER_LAYOUT)}


def test_flat_folder_without_machine_names_the_layouts_that_would_fit(make_tree):
    root = make_tree([f"train/{n}" for n in PUMP_DAYS])
    with pytest.raises(DatasetError) as err:
        discover_training(root / "train")
    text = str(err.value)
    assert "\n" not in text and "8 audio file(s)" in text and "--machine NAME" in text
    for name in [*LAYOUTS, "DIR/<machine>/*.wav", "normal/*.wav (+ abnormal/)"]:
        assert name in text, name
    assert layouts_hint() in text


def test_one_machine_per_sub_folder(make_tree):
    root = make_tree(["d/pumpA/a.wav", "d/pumpA/b.wav", "d/fan 2/2026/c.wav", "d/stray.wav"])
    clips = discover_training(root / "d")
    assert _rel(clips, root / "d") == {
        "pumpA/a.wav": ("pumpA", "train", None), "pumpA/b.wav": ("pumpA", "train", None),
        "fan 2/2026/c.wav": ("fan 2", "train", None)}
    picked = discover_training(root / "d", "pumpA")  # a sub-folder's name picks it
    assert {c.machine for c in picked} == {"pumpA"} and len(picked) == 2


def test_normal_abnormal_pair_abnormal_never_trains(make_tree):
    root = make_tree(["d/pumpA/normal/n1.wav", "d/pumpA/normal/n2.wav",
                      "d/pumpA/abnormal/a1.wav", "d/fan/normal/n1.wav"])
    got = _rel(discover_training(root / "d"), root / "d")
    assert got == {"pumpA/normal/n1.wav": ("pumpA", "train", NORMAL),
                   "pumpA/normal/n2.wav": ("pumpA", "train", NORMAL),
                   "pumpA/abnormal/a1.wav": ("pumpA", "test", ANOMALY),
                   "fan/normal/n1.wav": ("fan", "train", NORMAL)}
    # the machine's own folder: normal/ and abnormal/ directly under it
    own = discover_training(root / "d" / "pumpA")
    assert {(c.machine, c.split) for c in own} == {("pumpA", "train"), ("pumpA", "test")}


def test_only_abnormal_recordings_is_an_error(make_tree):
    root = make_tree(["d/abnormal/a1.wav"])
    with pytest.raises(DatasetError, match="only abnormal recordings"):
        discover_training(root / "d")


def test_known_layouts_are_unchanged_and_keep_their_warnings(make_tree, caplog):
    root = make_tree(["ds/fan/train/normal_id_00_00000000.wav",
                      "ds/fan/test/anomaly_id_00_00000001.wav", "ds/fan/stray.wav"])
    with caplog.at_level(logging.WARNING):
        clips = discover_training(root / "ds", "fan")
    assert {c.layout for c in clips} == {"dcase2020"} and len(clips) == 2
    assert "not recognised" in caplog.text  # the scan's warning is replayed


def test_plain_folders_do_not_log_the_scan_warning(make_tree, caplog):
    root = make_tree([f"train/{n}" for n in PUMP_DAYS])
    with caplog.at_level(logging.INFO):
        discover_training(root / "train", "pumpA")
    assert "not recognised" not in caplog.text
