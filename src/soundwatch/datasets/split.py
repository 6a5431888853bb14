"""A DCASE-2020-style train/test split for layouts without one (MIMII raw)."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence

from soundwatch.datasets.clip import ANOMALY, NORMAL, Clip
from soundwatch.errors import DatasetError

__all__ = ["assign_split"]

log = logging.getLogger(__name__)


def _group(clip: Clip) -> tuple[str, str]:
    return clip.machine, clip.machine_id or clip.section or ""


def assign_split(
    clips: Sequence[Clip],
    test_normal_per_id: int | float | None = None,
    seed: int = 0,
    train_normals: int | None = None,
) -> list[Clip]:
    """Split clips that have no split into train and test, as DCASE 2020 did with MIMII.

    Per machine type and machine ID: every anomaly goes to test, so does a random draw
    of normal clips (by default as many as there are anomalies, but never more than half
    of the normal clips, so training always keeps some), the other normal clips go to
    train, and clips without a label go to test. ``train_normals`` instead keeps that
    many normal clips per machine ID for training and tests the rest. The draw is made on
    file names,
    so the same recording under several SNR folders (MIMII's -6/0/6 dB) lands in the
    same split and the test set never holds a noisier copy of a training clip. Clips
    that already have a split keep it.

    Args:
        clips: Clips, typically from a MIMII raw folder.
        test_normal_per_id: Normal recordings per machine ID to put in test: ``None``
            (as many as anomalies), an ``int`` count, or a ``float`` in (0, 1) (that
            fraction of the normal recordings).
        seed: Seed of the draw; the same seed gives the same split.
        train_normals: Normal recordings per machine ID to train on (the others go to
            test); overrides ``test_normal_per_id``.

    Returns:
        New clips in the same order, each with ``split`` set.

    Raises:
        DatasetError: ``test_normal_per_id`` is negative or a fraction outside (0, 1),
            or ``train_normals`` is below 1.
    """
    if train_normals is not None and (isinstance(train_normals, bool) or train_normals < 1):
        raise DatasetError("--train-normals", f"must be a count >= 1; got {train_normals!r}")
    if isinstance(test_normal_per_id, bool) or (
        test_normal_per_id is not None
        and (
            test_normal_per_id < 0
            or (isinstance(test_normal_per_id, float) and not 0 < test_normal_per_id < 1)
        )
    ):
        raise DatasetError("test_normal_per_id",
                           f"must be None, a count >= 0 or a fraction in (0, 1); "
                           f"got {test_normal_per_id!r}")
    normals: dict[tuple[str, str], set[str]] = defaultdict(set)
    anomalies: dict[tuple[str, str], set[str]] = defaultdict(set)
    for clip in clips:
        if clip.split is not None:
            continue
        if clip.label == NORMAL:
            normals[_group(clip)].add(clip.file_name)
        elif clip.label == ANOMALY:
            anomalies[_group(clip)].add(clip.file_name)
    test_names: dict[tuple[str, str], set[str]] = {}
    for group, names in normals.items():
        if train_normals is not None:
            if train_normals > len(names):
                log.warning("%s %s: %d normal recording(s), fewer than --train-normals %d; "
                            "all of them train", group[0], group[1], len(names), train_normals)
            count = max(0, len(names) - int(train_normals))
        elif test_normal_per_id is None:
            count = min(len(anomalies.get(group, ())), len(names) // 2)
        elif isinstance(test_normal_per_id, float):
            count = round(test_normal_per_id * len(names))
        else:
            count = int(test_normal_per_id)
        rng = random.Random(f"{seed}:{group[0]}:{group[1]}")
        ordered = sorted(names)
        test_names[group] = set(rng.sample(ordered, min(count, len(ordered))))
    out: list[Clip] = []
    for clip in clips:
        if clip.split is not None:
            out.append(clip)
        elif clip.label == NORMAL and clip.file_name not in test_names.get(_group(clip), ()):
            out.append(clip.with_(split="train"))
        else:
            out.append(clip.with_(split="test"))
    return out
