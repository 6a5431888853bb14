"""assign_split: a DCASE-2020-style split for MIMII raw clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundwatch.datasets import ANOMALY, NORMAL, Clip, assign_split
from soundwatch.errors import DatasetError


def _mimii(n_normal, n_anomaly, machine="fan", mid="id_00", snr=None):
    attrs = {"snr": snr} if snr else {}
    base = Path(f"/d/{snr or 'x'}/{machine}/{mid}")
    clips = [Clip(base / "normal" / f"{i:08d}.wav", machine, label=NORMAL, machine_id=mid,
                  section=mid[3:], attributes=attrs, layout="mimii") for i in range(n_normal)]
    clips += [Clip(base / "abnormal" / f"{i:08d}.wav", machine, label=ANOMALY, machine_id=mid,
                   section=mid[3:], attributes=attrs, layout="mimii") for i in range(n_anomaly)]
    return clips


def _count(clips, split, label):
    return sum(1 for c in clips if c.split == split and c.label == label)


def test_default_puts_as_many_normals_as_anomalies_in_test():
    clips = assign_split(_mimii(10, 3) + _mimii(6, 2, mid="id_02"), seed=0)
    assert all(c.split in ("train", "test") for c in clips)
    assert _count(clips, "test", ANOMALY) == 5 and _count(clips, "train", ANOMALY) == 0
    per_id = {mid: sum(1 for c in clips if c.machine_id == mid and c.split == "test"
                       and c.label == NORMAL) for mid in ("id_00", "id_02")}
    assert per_id == {"id_00": 3, "id_02": 2}
    assert _count(clips, "train", NORMAL) == 11


def test_count_and_fraction():
    assert _count(assign_split(_mimii(10, 3), test_normal_per_id=4), "test", NORMAL) == 4
    assert _count(assign_split(_mimii(10, 3), test_normal_per_id=0.5), "test", NORMAL) == 5
    assert _count(assign_split(_mimii(2, 3), test_normal_per_id=9), "test", NORMAL) == 2


def test_same_seed_same_split_other_seed_differs():
    a = [c.split for c in assign_split(_mimii(40, 10), seed=1)]
    b = [c.split for c in assign_split(_mimii(40, 10), seed=1)]
    c = [c.split for c in assign_split(_mimii(40, 10), seed=2)]
    assert a == b and a != c


def test_same_recording_at_every_snr_lands_in_the_same_split():
    clips = assign_split(_mimii(20, 5, snr="-6dB") + _mimii(20, 5, snr="6dB"), seed=3)
    by_name: dict[tuple[str, int], set[str]] = {}
    for c in clips:
        by_name.setdefault((c.file_name, c.label), set()).add(c.split)
    assert all(len(splits) == 1 for splits in by_name.values())


def test_existing_splits_are_kept_and_unlabelled_go_to_test():
    kept = Clip(Path("/d/fan/train/normal_id_00_00000000.wav"), "fan", split="train", label=NORMAL)
    unlabelled = Clip(Path("/d/fan/id_00/x.wav"), "fan", machine_id="id_00")
    out = assign_split([kept, unlabelled])
    assert out[0] is kept and out[1].split == "test"


@pytest.mark.parametrize("bad", [-1, 1.5, 0.0, True])
def test_bad_test_normal_per_id(bad):
    with pytest.raises(DatasetError, match="test_normal_per_id"):
        assign_split(_mimii(3, 1), test_normal_per_id=bad)


def test_default_split_keeps_half_the_normals_for_training():
    """Few normals, many anomalies: the default never tests more than half the normals."""
    clips = assign_split(_mimii(6, 10), seed=0)
    assert _count(clips, "train", NORMAL) == 3
    assert _count(clips, "test", NORMAL) == 3


def test_train_normals_sets_the_training_count():
    clips = assign_split(_mimii(10, 3), seed=0, train_normals=7)
    assert _count(clips, "train", NORMAL) == 7 and _count(clips, "test", NORMAL) == 3
    other = assign_split(_mimii(10, 3), seed=5, train_normals=7)
    assert {c.path for c in clips if c.split == "train"} != {
        c.path for c in other if c.split == "train"}, "the seed draws other clips"
    everything = assign_split(_mimii(4, 3), seed=0, train_normals=10)
    assert _count(everything, "train", NORMAL) == 4


def test_train_normals_must_be_positive():
    with pytest.raises(DatasetError, match="--train-normals"):
        assign_split(_mimii(4, 3), train_normals=0)
