"""Training a run: one detector per machine type, its decision rule and records."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.abnormal_check import check_abnormal
from soundwatch.audio import info
from soundwatch.config import RunConfig
from soundwatch.datasets.folders import FOLDER_LAYOUT
from soundwatch.errors import AudioError, ConfigError, DatasetError, MachinesFailed
from soundwatch.features.cache import FeatureCache
from soundwatch.pipeline.common import (
    TRAIN_SPLIT,
    check_data_folder,
    check_policy,
    discover_clips,
    group_by_machine,
    make_detector,
    pick_machines,
    resolve_config,
)
from soundwatch.pipeline.executor import Executor, LocalExecutor
from soundwatch.pipeline.machines import TrainJob, complete_machine
from soundwatch.runs import Run
from soundwatch.training.context import RunContext

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip

log = logging.getLogger(__name__)


def train(
    data: str | os.PathLike[str],
    detector: str | None = None,
    config: str | os.PathLike[str] | RunConfig | None = None,
    machines: Iterable[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    epochs: int | None = None,
    objective: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    channel: int | str | None = None,
    threshold: str | None = None,
    train_normals: int | None = None,
    split_seed: int | None = None,
    skip_bad: bool = False,
    context: RunContext | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    on_machine: Callable[[str, str], None] | None = None,
    executor: Executor | None = None,
) -> Run:
    """Train one detector per machine type on a dataset's training split.

    Unsupervised detectors see the normal clips only (label 0 or unknown); supervised
    ones (``detector.supervised``) see every training clip with its label. The run
    folder gets ``config.yaml``, ``run.json``, ``detector/<machine>/``,
    ``train_log/<machine>.csv`` (networks) and ``scores/train_scores.csv``.

    Args:
        data: Dataset root folder (any layout :func:`soundwatch.datasets.discover` knows).
        detector: Detector name (``soundwatch detectors``); default: ``config``'s, else the
            recommended ``default`` preset.
        config: YAML file or shipped config name (``detector:`` + ``params:``), or a
            RunConfig.
        machines: Train only these machine types (default: every type found).
        out: Run folder (default ``<runs_dir>/<detector>-<timestamp>``).
        params: Hyper-parameter overrides (merged over the config's ``params``).
        epochs: Shortcut for ``params["epochs"]``.
        objective: Shortcut for ``params["objective"]``.
        seed: Random seed, a hyper-parameter (default: config's, else 0).
        device: ``auto``/``cpu``/``cuda`` (default: config's, else ``auto``). Recorded in
            ``config.yaml``.
        channel: The audio channel to read from multi-channel files (an index, 0 the
            first, or ``"mean"``; default: the config's, else 0). Recorded in
            ``config.yaml`` and ``run.json``; scoring, the service and the export use it.
        threshold: The decision policy fitted on each machine type's out-of-fold
            training scores and saved as ``decisions/<machine>.json`` (default
            ``far:0.01``; see :mod:`soundwatch.decisions`).
        train_normals: Clips without a split (MIMII raw): normal recordings per machine
            ID to train on, the rest are tested (default: see
            :func:`soundwatch.datasets.assign_split`).
        split_seed: Seed of that split (default: ``seed``); recorded in ``run.json`` so
            that ``score`` tests the same clips.
        skip_bad: Check every clip first; skip and record unreadable ones instead of
            failing on the first.
        context: The run settings (:class:`~soundwatch.training.context.RunContext`,
            never saved): feature-cache folder (``cache_dir``; ``None``: no cache),
            ``progress``, ``resume`` (reuse ``out``: skip machine types whose detector is
            already saved, and continue an interrupted network's training from its last
            checkpoint), Lightning ``devices``/``strategy``/``num_nodes`` (several
            devices: DDP; see :func:`soundwatch.training.fit.launch_strategy`),
            ``precision``, ``in_memory_mb``. Default ``RunContext()``. Its ``device`` and
            ``channel`` are the resolved config's (``device``/``channel`` above); a
            different one is an error. Each machine type's log and checkpoint folders
            are in the run folder.
        runs_dir: Parent of the default run folder.
        on_machine: Called as ``on_machine(machine, event)`` with ``"start"``,
            ``"skip"`` and ``"done"`` (for CLI feedback).
        executor: Where the machine types are trained (default
            :class:`~soundwatch.pipeline.executor.LocalExecutor`: one after the other here;
            :class:`soundwatch.scale.RayExecutor`: one Ray task per machine type, a failed
            machine type does not stop the others).

    Returns:
        The run (its ``root`` is the run folder, ``info`` the ``run.json`` content).

    Raises:
        DatasetError: Missing data folder, no clips, unknown machine, or no training
            clips for a machine.
        DetectorError: Unknown detector or parameter, or a training failure.
        ConfigError: Invalid config, a context whose device or channel is not the
            config's, or ``out`` already holds a run and not ``context.resume``.
        AudioError: An unreadable clip (without ``skip_bad``).
        MachinesFailed: Some machine types failed (the others are saved; an executor that
            goes on after a failure, e.g. Ray).
    """
    policy = check_policy(threshold)
    check_data_folder(data)  # the cheapest mistake first: no detector import needed
    cfg = resolve_config(
        data, detector, config, machines=machines, params=params, epochs=epochs,
        objective=objective, seed=seed, device=device, channel=channel,
    )
    context = _run_context(cfg, context)
    if context.cache_dir is not None:  # a cache folder that is a file or read-only fails early
        FeatureCache(Path(context.cache_dir)).prepare()
    # Fail on bad parameters before anything is written.
    probe = make_detector(cfg)
    supervised = bool(getattr(probe, "supervised", False))
    del probe

    import time

    start = time.perf_counter()
    split_draw = cfg.seed if split_seed is None else int(split_seed)
    clips = discover_clips(cfg.data, split_draw, train_normals=train_normals,  # type: ignore[arg-type]
                      machines=cfg.machines)
    discover_s = time.perf_counter() - start
    train_clips = [c for c in clips if c.split == TRAIN_SPLIT]
    found = sorted({c.machine for c in clips})
    chosen = pick_machines(found, cfg.machines, str(cfg.data))
    by_machine = group_by_machine(
        c for c in train_clips if supervised or c.label in (None, 0)
    )
    missing = [m for m in chosen if not by_machine.get(m)]
    if missing:  # before any training: don't make the user wait to learn this
        kind = "labelled" if supervised else "normal"
        raise DatasetError(
            cfg.data or "DATA",
            f"no {kind} training clips (split '{TRAIN_SPLIT}') for {', '.join(missing)}"
            f"{_missing_reason(clips, missing, supervised)}",
        )

    if not skip_bad:  # a channel some file lacks: before a run folder is made
        _check_channel([c for m in chosen for c in by_machine[m]], cfg.channel)
    run = Run.create(cfg, out, runs_dir=runs_dir, resume=context.resume)
    if train_normals is not None or split_seed is not None:
        run.info["split"] = {"seed": split_draw, "train_normals": train_normals}
    run.record_step("discover", discover_s, clips=len(clips))
    run.info["channel"] = cfg.channel
    todo = []
    for machine in chosen:
        if context.resume and run.has_detector(machine) and complete_machine(run, machine):
            log.info("%s: already trained, skipped (resume)", machine)
            if on_machine:
                on_machine(machine, "skip")
            continue
        todo.append(machine)
    job = TrainJob(cfg=cfg, run_root=str(run.root), context=context, skip_bad=skip_bad,
                   supervised=supervised, threshold=policy)
    failures = (executor or LocalExecutor()).train_machines(
        run, job, {m: by_machine[m] for m in todo}, on_machine)
    _check_abnormal_folders(run, clips, [m for m in chosen if m not in failures])
    run.info["failed"] = failures
    run.info["finished"] = not failures
    run.save_info()
    if failures:
        raise MachinesFailed(run.root, failures)
    return run


def _run_context(cfg: RunConfig, context: RunContext | None) -> RunContext:
    """The training's run context: ``context`` with the resolved config's device and channel.

    Raises:
        ConfigError: ``context`` names another device or channel than the config's.
    """
    default = RunContext()
    context = context or default
    for name in ("device", "channel"):
        given, recorded = getattr(context, name), getattr(cfg, name)
        if given != getattr(default, name) and given != recorded:
            raise ConfigError(f"context.{name}", f"{given!r} differs from the config's "
                              f"{recorded!r}: give {name}= to train (it is recorded in "
                              "config.yaml)")
    return context.replace(device=cfg.device, channel=cfg.channel)


def _check_channel(clips: Sequence[Clip], channel: int | str) -> None:
    """Raise for the first clip that lacks ``channel`` (headers only: fast).

    Raises:
        AudioError: A file without that channel, or unreadable.
    """
    if channel in (0, "mean"):  # every audio file has them
        return

    for clip in clips:
        n = info(clip.path).channels
        if not -n <= int(channel) < n:
            raise AudioError(clip.path, f"channel {channel} asked for (--channel), file has "
                             f"{n} channel(s)")


def _check_abnormal_folders(run: Run, clips: Sequence[Clip], machines: Sequence[str]) -> None:
    """Score the ``abnormal/`` folder clips of plain-folder data after training (never fit).

    Records :func:`soundwatch.abnormal_check.check_abnormal`'s facts as
    ``run.json`` ``machines.<m>.abnormal_check``.
    """
    for machine in machines:
        abnormal = [c for c in clips if c.machine == machine and c.layout == FOLDER_LAYOUT
                    and c.label == 1]
        if not abnormal:
            continue

        with run.step(f"abnormal_check/{machine}", clips=len(abnormal)):
            facts = check_abnormal(run, machine, abnormal)
        run.set_machine_info(machine, abnormal_check=facts)


def _missing_reason(clips: Sequence[Clip], missing: Sequence[str], supervised: bool) -> str:
    """Why machine types have no training clips, in a few words (for the error)."""
    if any(c.layout == "mimii" for c in clips if c.machine in missing):
        normals = sum(1 for c in clips if c.machine in missing and c.label == 0)
        return (f": the MIMII clips have no split and only {normals} normal recording(s) "
                "exist; choose how many train with --train-normals N (and --split-seed)")
    mine = [c for c in clips if c.machine in missing]
    if not mine:
        return ""
    if not any(c.split == TRAIN_SPLIT for c in mine):
        return f": the data holds only {', '.join(sorted({str(c.split) for c in mine}))} clips"
    if not supervised:
        return ": every training clip is labelled anomalous"
    return ": the training clips have no labels"
