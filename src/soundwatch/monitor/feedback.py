"""Feedback: recordings judged normal join a machine's normal data; scorer and threshold refit.

``soundwatch add-normal`` and the service's ``POST /v1/machines/{m}/normal`` call
:func:`add_normal`. The networks are not retrained: only the scorer after them (and the
threshold, from new out-of-fold training scores) is refitted, as ``soundwatch refit`` does.
The added files are copied into the run (``<run>/normal/<machine>/``) so the run stays
self-contained; ``run.json`` records every change (``changes``) with the files' digests.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from soundwatch.audio import load
from soundwatch.decisions import Decider
from soundwatch.detectors.loading import load_run_detector
from soundwatch.errors import ConfigError, DetectorError, SoundwatchError
from soundwatch.pipeline import cache_folder, merge_table, run_context, training_normals
from soundwatch.run_decisions import machine_decider, refit_threshold
from soundwatch.runs import Run
from soundwatch.scores import add_decisions, make_scores_table, write_scores_table

__all__ = ["add_normal"]

log = logging.getLogger(__name__)

NORMAL_DIR = "normal"
"""Sub-folder of a run that holds the recordings added as normal, one folder per machine."""


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def add_normal(run_dir: str | os.PathLike[str], machine: str,
               files: Sequence[str | os.PathLike[str]], *,
               names: Sequence[str] | None = None, data: str | os.PathLike[str] | None = None,
               cache_dir: str | os.PathLike[str] | None = None, no_cache: bool = False,
               via: str = "cli") -> dict[str, Any]:
    """Add recordings judged normal to a machine's normal data and refit its scorer.

    The machine's normal training clips (found again in the run's data folder), the
    recordings added before and the new ones are the scorer's new training set; the
    network stays as trained. A file whose content was already added is not added twice.

    Args:
        run_dir: A run folder written by ``soundwatch train``.
        machine: The machine type the recordings belong to.
        files: The audio files.
        names: The names to record for the files (default: their file names).
        data: The run's dataset root when it moved (default: the one recorded).
        cache_dir: Feature-cache folder (default: the user cache folder).
        no_cache: Do not cache features.
        via: Who asked (``"cli"``, ``"service"``), recorded in the change.

    Returns:
        The change recorded in ``run.json``: ``time``, ``kind``, ``machine``, ``via``,
        ``files`` (``name``, ``sha256``, ``stored``), ``already`` (names skipped as
        already added), ``train_clips``, ``threshold_before``, ``threshold_after``.

    Raises:
        ConfigError: No file given, a machine not in the run, or no data folder known.
        AudioError: A file that is not usable audio (nothing is changed then).
        DetectorError: A detector whose scorer cannot be refitted alone.
    """
    if not files:
        raise ConfigError("FILES", "give at least one recording judged normal")
    names = list(names) if names is not None else [Path(f).name for f in files]
    run = Run.open(run_dir)
    if machine not in run.machines():
        raise ConfigError("--machine", f"{machine!r} is not in the run "
                          f"(trained: {', '.join(run.machines())})")
    detector = load_run_detector(run, machine)
    if not callable(getattr(detector, "refit_scorer", None)):
        raise DetectorError(getattr(detector, "name", machine),
                            "its scorer cannot be refitted alone; train again with the "
                            "added recordings in the data folder")
    for path in files:  # every file checked before anything changes
        load(path, sr=None)
    run.lock()
    try:
        known = {item["sha256"] for change in run.info.get("changes") or []
                 if change.get("kind") == "add-normal" and change.get("machine") == machine
                 for item in change.get("files") or []}
        added, already = [], []
        folder = Path(run.root) / NORMAL_DIR / machine
        for path, name in zip(files, names, strict=True):
            digest = _digest(Path(path))
            if digest in known:
                already.append(name)
                continue
            known.add(digest)
            suffix = Path(path).suffix.lower() or ".wav"
            stored = folder / f"{digest[:16]}{suffix}"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, stored)
            added.append({"name": name, "sha256": digest,
                          "stored": stored.relative_to(run.root).as_posix()})
        before = float(machine_decider(run, machine).threshold)
        change: dict[str, Any] = {
            "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "kind": "add-normal", "machine": machine, "via": via, "files": added,
            "already": already, "threshold_before": before,
        }
        if not added:
            change.update(train_clips=None, threshold_after=before)
            return change
        run.info.setdefault("changes", []).append(change)  # before the refit: listed below
        try:
            clips = training_normals(run, data).get(machine, [])
        except SoundwatchError:
            run.info["changes"].pop()
            raise
        cfg = run.config()
        context = run_context(cfg, cache_dir=cache_folder(cache_dir, no_cache))
        try:
            with run.step(f"add-normal/{machine}", clips=len(clips), added=len(added)):
                detector.refit_scorer(clips, context)
        except BaseException:
            run.info["changes"].pop()
            raise
        table = add_decisions(make_scores_table(clips, detector.training_scores()),
                              {machine: Decider.from_detector(detector)})
        write_scores_table(merge_table(run.train_scores_path, machine, table),
                           run.train_scores_path)
        detector.save(run.detector_dir(machine))
        # the run's rule keeps its policy (e.g. far:0.01), refitted on the new training scores
        after = float(refit_threshold(run, machine, train_table=table,
                                      reason="add-normal").threshold)
        change.update(train_clips=len(clips), threshold_after=after)
        added_total = sum(len(c.get("files") or []) for c in run.info["changes"]
                          if c.get("kind") == "add-normal" and c.get("machine") == machine)
        run.set_machine_info(machine, train_clips=len(clips), added_normals=added_total)
        log.info("%s: %d recording(s) added as normal; threshold %.6g -> %.6g (%d clips)",
                 machine, len(added), before, after, len(clips))
        return change
    finally:
        run.close()
