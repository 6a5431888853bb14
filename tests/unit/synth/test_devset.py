import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundwatch.errors import ConfigError
from soundwatch.synth import MACHINE_TYPES, synth_machines
from soundwatch.synth.devset import parse_machines
from soundwatch.synth.writer import LOCK_NAME

SMALL = {"machines": "fan,valve", "train_source": 4, "train_target": 2, "test_per_group": 2,
         "seconds": 0.25, "sr": 16000}
NAME = re.compile(
    r"section_00_(source|target)_(train|test)_(normal|anomaly)_(\d{4})((?:_[a-z]+_\d+)+)\.wav$")


def wavs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return synth_machines(tmp_path_factory.mktemp("set") / "out", seed=1, workers=1, **SMALL)


def test_layout_names_and_counts(small_set):
    files = wavs(small_set)
    assert len(files) == 2 * (4 + 2 + 4 * 2)
    for rel in files:
        machine, split, name = rel.split("/")
        assert machine in ("fan", "valve")
        m = NAME.match(name)
        assert m, name
        assert m.group(2) == split
        if split == "train":
            assert m.group(3) == "normal"
    fan = [r for r in files if r.startswith("fan/")]
    assert sum("_source_train_normal_" in r for r in fan) == 4
    assert sum("_target_train_normal_" in r for r in fan) == 2
    for group in ("source_test_normal", "source_test_anomaly", "target_test_normal",
                  "target_test_anomaly"):
        assert sum(f"_{group}_" in r for r in fan) == 2
    info = sf.info(str(small_set / next(iter(files))))
    assert (info.samplerate, info.frames, info.subtype, info.channels) == (16000, 4000, "PCM_16", 1)
    assert not (small_set / LOCK_NAME).exists()


def test_attributes_csv_matches_file_names(small_set):
    for machine in ("fan", "valve"):
        with open(small_set / machine / "attributes_00.csv", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["file_name", "d1p", "d1v", "d2p", "d2v"]
        listed = {r[0] for r in rows[1:]}
        on_disk = {p.relative_to(small_set).as_posix()
                   for p in (small_set / machine).rglob("*.wav")}
        assert listed == on_disk
        for row in rows[1:]:
            assert row[0].endswith(f"_{row[1]}_{row[2]}_{row[3]}_{row[4]}.wav")


def test_dataset_json_records_parameters_and_counts(small_set):
    info = json.loads((small_set / "dataset.json").read_text())
    assert info["parameters"]["seed"] == 1
    assert info["parameters"]["machines"] == ["fan", "valve"]
    assert info["total_clips"] == 28
    assert info["counts"]["fan"]["test_target_anomaly"] == 2
    assert "generator_version" in info


def test_manifest_has_anomaly_kinds_and_severities(small_set):
    with open(small_set / "synth_manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 28
    for row in rows:
        if row["label"] == "1":
            assert row["anomaly"] and 0.0 < float(row["severity"]) <= 1.0
        else:
            assert row["anomaly"] == "" and float(row["severity"]) == 0.0


def test_same_seed_identical_bytes_whatever_the_workers_other_seed_differs(small_set, tmp_path):
    again = synth_machines(tmp_path / "again", seed=1, workers=2, **SMALL)
    assert wavs(again) == wavs(small_set)
    for name in ("dataset.json", "synth_manifest.csv", "fan/attributes_00.csv"):
        assert (again / name).read_bytes() == (small_set / name).read_bytes()
    other = synth_machines(tmp_path / "other", seed=2, workers=1, **SMALL)
    a, b = wavs(small_set), wavs(other)
    assert sum(a.get(k) != v for k, v in b.items()) == len(b)  # every clip differs


def test_more_clips_keep_the_existing_ones(small_set, tmp_path):
    bigger = synth_machines(tmp_path / "big", seed=1, workers=1,
                            **{**SMALL, "train_source": 6})
    small, big = wavs(small_set), wavs(bigger)
    assert len(big) == len(small) + 2 * 2
    assert all(big[k] == v for k, v in small.items())


def test_resume_rewrites_only_missing_files(tmp_path):
    out = synth_machines(tmp_path / "r", seed=3, workers=1, **SMALL)
    before = wavs(out)
    victim = out / sorted(before)[5]
    victim.unlink()
    # a killed run (process 99999999 is gone) left its temporary file
    (victim.parent / f".{victim.stem}.99999999.abcd1234.tmp.wav").write_bytes(b"partial")
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    os.utime(out / sorted(before)[0], ns=(1, 1))
    stamps[out / sorted(before)[0]] = 1
    synth_machines(out, seed=3, workers=1, **SMALL)
    assert wavs(out) == before
    for path, stamp in stamps.items():
        if path.name.endswith(".tmp.wav"):
            assert not path.exists()
        else:
            assert path.stat().st_mtime_ns == stamp, path
    assert victim.exists()


def test_other_parameters_into_the_same_folder_are_refused(small_set):
    with pytest.raises(ConfigError, match="other parameters"):
        synth_machines(small_set, seed=2, workers=1, **SMALL)


def test_interrupted_run_with_other_parameters_is_refused(tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"parameters": {"seed": 99}}))
    with pytest.raises(ConfigError, match="other parameters"):
        synth_machines(out, seed=1, workers=1, **SMALL)


def test_parse_machines():
    assert parse_machines(None) == list(MACHINE_TYPES)
    assert parse_machines("2") == list(MACHINE_TYPES[:2])
    assert parse_machines(3) == list(MACHINE_TYPES[:3])
    assert parse_machines("valve, fan") == ["valve", "fan"]
    assert parse_machines(["pump"]) == ["pump"]
    for bad in ("0", "99", "fan,robot", "fan,fan", ","):
        with pytest.raises(ConfigError, match="--machines"):
            parse_machines(bad)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"train_source": -1}, "--train-source"),
        ({"test_per_group": 1.5}, "--test-per-group"),
        ({"seconds": 0}, "--seconds"),
        ({"seconds": float("nan")}, "--seconds"),
        ({"sr": 100}, "--sr"),
        ({"seed": -3}, "--seed"),
        ({"workers": 0}, "--workers"),
        ({"train_source": 0, "train_target": 0, "test_per_group": 0}, "nothing"),
    ],
)
def test_bad_parameters_raise_config_error(tmp_path, change, match):
    params = {**SMALL, "seed": 0, "workers": 1, **change}
    with pytest.raises(ConfigError, match=match):
        synth_machines(tmp_path / "bad", **params)
    assert not (tmp_path / "bad").exists()


def test_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        synth_machines(target, workers=1, **SMALL)


def test_clips_are_not_silent(small_set):
    for path in small_set.rglob("*.wav"):
        x, _ = sf.read(str(path), dtype="float32")
        assert np.sqrt(np.mean(x**2)) > 0.005
