"""One machine type's training job, its result files and their records in the run (resume)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.atomic import write_json
from soundwatch.audio import DEFAULT_SR, info, load
from soundwatch.config import RunConfig
from soundwatch.datasets.checks import check_clips
from soundwatch.decisions import Decider, read_decider, save_decider
from soundwatch.errors import DatasetError, EvaluationError, SoundwatchError
from soundwatch.pipeline.common import make_detector, merge_table
from soundwatch.run_decisions import record_decider
from soundwatch.runs import Run
from soundwatch.scores import (
    add_decisions,
    make_scores_table,
    read_scores_table,
    write_scores_table,
)
from soundwatch.selfcheck import self_check
from soundwatch.training.context import RunContext

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """What every machine type's training shares (picklable: a Ray task gets a copy).

    Attributes:
        cfg: The resolved config.
        run_root: The run folder.
        context: The run settings (cache folder, progress, resume, devices, strategy,
            device, audio channel...); each machine type's log and checkpoint folders are
            added to it in the run folder.
        skip_bad: Skip unreadable clips instead of failing.
        supervised: The detector trains on labelled anomalies too.
        threshold: The decision policy (:mod:`soundwatch.decisions`).
    """

    cfg: RunConfig
    run_root: str
    context: RunContext
    skip_bad: bool = False
    supervised: bool = False
    threshold: str = "far:0.01"


@dataclass
class MachineResult:
    """What :func:`train_machine` did for one machine type (recorded by :func:`record_machine`).

    Attributes:
        machine: The machine type.
        clips: Training clips used.
        skipped: Unreadable clips skipped (``{"path", "reason"}``).
        labels: Clip count per label.
        seconds: Training seconds.
        score_seconds: Seconds computing the training scores.
        self_check: The machine's self-check (:func:`soundwatch.selfcheck.self_check`,
            JSON-ready), or ``None`` when it could not be made.
    """

    machine: str
    clips: int
    skipped: list[dict[str, str]]
    labels: dict[str, int]
    seconds: float
    score_seconds: float
    self_check: dict[str, Any] | None = None


def train_part_path(run: Run, machine: str) -> Path:
    """``scores/train_parts/<machine>.csv``: one machine type's training scores."""
    return run.scores_dir / "train_parts" / f"{machine}.csv"


def train_machine(job: TrainJob, machine: str, clips: Sequence[Clip]) -> MachineResult:
    """Train, score and save one machine type's detector into the run folder.

    Writes ``detector/<machine>/`` (its ``config.json`` last: "this machine type is done"),
    ``train_log/<machine>.csv`` and ``scores/train_parts/<machine>.csv``, and nothing
    shared with other machine types, so machine types can train in parallel processes
    (the Ray backend) into one run folder.

    Raises:
        DatasetError: Every training clip unreadable, or missing labels.
    """
    import time


    cfg = job.cfg
    run = Run(job.run_root)
    good, skipped = check_clips(clips, job.skip_bad, job.context.channel)
    if not good:
        raise DatasetError(f"{cfg.data} [{machine}]", "every training clip is unreadable")
    tmp_log = run.train_log_dir / f".{machine}"
    checkpoints = run.root / "checkpoints" / machine
    context = job.context.replace(log_dir=str(tmp_log), checkpoint_dir=str(checkpoints))
    det = make_detector(cfg)
    labels = None
    if job.supervised:
        import numpy as np

        labels = np.array([-1 if c.label is None else c.label for c in good])
        if (labels < 0).any():
            raise DatasetError(f"{cfg.data} [{machine}]", "supervised training needs labels")
    start = time.perf_counter()
    det.fit(good, labels, context=context)
    seconds = time.perf_counter() - start
    _collect_train_log(tmp_log, run.train_log_path(machine))
    start = time.perf_counter()
    table = make_scores_table(_normal(good, labels), det.training_scores())
    decider = fit_decider(table, job.threshold, good)
    det.threshold_ = decider.threshold  # predict() decides as the saved rule does
    write_scores_table(add_decisions(table, {machine: decider}), train_part_path(run, machine))
    save_decider(run.root, machine, decider)
    score_seconds = time.perf_counter() - start
    result = MachineResult(machine, len(good), skipped,
                           {str(k): int(v) for k, v in _label_counts(good).items()},
                           seconds, score_seconds,
                           machine_self_check(det, _normal(good, labels), machine,
                                              context.channel))
    # what record_machine needs, kept before the detector marks the machine done, so a
    # resume after a kill between the two can record it (complete_machine)
    write_json(train_result_path(run, machine), dataclasses.asdict(result))
    det.save(run.detector_dir(machine))  # config.json last = "this machine is done"
    shutil.rmtree(checkpoints, ignore_errors=True)  # the saved detector supersedes them
    with contextlib.suppress(OSError):
        checkpoints.parent.rmdir()  # only when no other machine's checkpoints remain
    log.info("%s: trained on %d clips", machine, len(good))
    return result


def train_result_path(run: Run, machine: str) -> Path:
    """``scores/train_parts/<machine>.json``: what :func:`record_machine` records."""
    return run.scores_dir / "train_parts" / f"{machine}.json"


def _recorded_machines(run: Run) -> set[str]:
    """Machine types with rows in ``scores/train_scores.csv`` (none when it is unreadable)."""
    if not run.train_scores_path.is_file():
        return set()
    try:
        return set(read_scores_table(run.train_scores_path)["machine"].astype(str))
    except EvaluationError:
        return set()


def complete_machine(run: Run, machine: str) -> bool:
    """Make sure a machine type with a saved detector is fully recorded (for ``--resume``).

    A kill between saving the detector and :func:`record_machine` leaves the detector
    without its training scores in ``scores/train_scores.csv`` and its facts in
    ``run.json``; they are recorded here from ``scores/train_parts/``.

    Returns:
        True when the machine is complete (now), False when its training part is gone and
        the machine must be trained again.
    """
    in_info = machine in run.info.get("machines", {})
    if in_info and machine in _recorded_machines(run):
        return True
    part = train_part_path(run, machine)
    try:
        table = read_scores_table(part)
    except EvaluationError:
        log.warning("%s: saved detector without its training scores; training it again",
                    machine)
        return False
    facts_path = train_result_path(run, machine)
    try:
        facts = json.loads(facts_path.read_text(encoding="utf-8"))
        result = MachineResult(**facts)
    except (OSError, ValueError, TypeError):  # a run from before the facts were kept
        result = MachineResult(machine, len(table), [], {}, 0.0, 0.0)
    log.info("%s: recording the training scores an interrupted run left out", machine)
    record_machine(run, result)
    return True


SELF_CHECK_CLIPS = 32
"""Normal training clips read back to measure how alike they sound (evenly spaced)."""


def machine_self_check(det: Any, normal: Sequence[Clip], machine: str,
                       channel: int | str = 0) -> dict[str, Any] | None:
    """The self-check of a fitted detector (:mod:`soundwatch.selfcheck`), JSON-ready.

    Reads back up to :data:`SELF_CHECK_CLIPS` of the normal training clips (their
    ``channel``, the one the run trains on); never fails the training (a problem is logged
    and the check left out).
    """
    import numpy as np


    try:
        decider = Decider.from_detector(det)
        members = [m.train_scores_ for m in getattr(det, "members_", None) or []
                   if getattr(m, "train_scores_", None) is not None]
        picks = np.unique(np.linspace(0, len(normal) - 1, min(len(normal), SELF_CHECK_CLIPS))
                          .round().astype(int)) if normal else []
        signals = []
        for i in picks:
            with contextlib.suppress(SoundwatchError):
                signals.append(load(normal[int(i)].path, sr=DEFAULT_SR, channel=channel))
        check = self_check(det.training_scores(), decider.threshold,
                           member_scores=members or None, signals=signals, sr=DEFAULT_SR)
    except (SoundwatchError, ValueError, OSError) as exc:
        log.warning("%s: self-check left out: %s", machine, exc)
        return None
    for warning in check.warnings:
        log.warning("%s: %s", machine, warning)
    return check.to_dict()


def record_machine(run: Run, result: MachineResult) -> None:
    """Record a trained machine type in ``run.json`` and merge its training scores."""
    if result.skipped:
        run.add_skipped(result.skipped, step=f"train/{result.machine}")
    run.record_step(f"train/{result.machine}", result.seconds, clips=result.clips)
    run.record_step(f"train_scores/{result.machine}", result.score_seconds, clips=result.clips)
    table = read_scores_table(train_part_path(run, result.machine))
    write_scores_table(merge_table(run.train_scores_path, result.machine, table),
                       run.train_scores_path)
    facts: dict[str, Any] = {}
    if result.self_check is not None:
        facts["self_check"] = result.self_check
    run.set_machine_info(result.machine, train_clips=result.clips, skipped=len(result.skipped),
                         labels=result.labels, **facts)

    decider = read_decider(run.root, result.machine)
    if decider is not None:
        record_decider(run, result.machine, decider, reason="train")


def fit_decider(table: Any, policy: str, clips: Sequence[Clip] = ()) -> Any:
    """A machine type's decision rule from its training scores table.

    Fitted per section where the table has several (:class:`soundwatch.decisions.Decider`),
    with the training recordings' sample rates (the sensor check's expected rates).
    """
    rates = sorted(_sample_rates(clips))
    sections = table["section"].tolist() if "section" in table else None
    return Decider.from_training_scores(table["score"].to_numpy(), policy, sections, rates)


def _sample_rates(clips: Sequence[Clip]) -> set[int]:
    """The sample rates of some recordings (headers only; unreadable ones left out)."""
    rates: set[int] = set()
    for clip in clips:
        try:
            rates.add(int(info(clip.path).samplerate))
        except SoundwatchError:
            continue
    return rates


def _label_counts(clips: Sequence[Clip]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for clip in clips:
        key = "unknown" if clip.label is None else str(clip.label)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _collect_train_log(tmp_dir: Path, dest: Path) -> None:
    """Move the detector's ``train_log.csv`` to ``train_log/<machine>.csv``; drop the temp dir."""
    if not tmp_dir.is_dir():
        return
    found = tmp_dir / "train_log.csv"
    if not found.is_file():
        found = next(iter(sorted(tmp_dir.rglob("*.csv"))), None)  # type: ignore[assignment]
    if found is not None and found.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(found, dest)
    shutil.rmtree(tmp_dir, ignore_errors=True)


def _normal(clips: Sequence[Clip], labels: Any) -> list[Clip]:
    """The normal clips among training clips (all of them when there are no labels)."""
    if labels is None:
        return list(clips)
    return [c for c, y in zip(clips, labels, strict=True) if y == 0]
