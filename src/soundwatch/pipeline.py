"""Train and score pipelines: the library functions behind ``soundwatch train`` and ``score``."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.atomic import atomic_open, atomic_path, write_json
from soundwatch.config import RunConfig, load_config
from soundwatch.errors import AudioError, ConfigError, DatasetError
from soundwatch.runs import Run

if TYPE_CHECKING:
    import pandas as pd

    from soundwatch.datasets.clip import Clip

__all__ = [
    "RUNTIME_PARAMS",
    "MachineResult",
    "TrainJob",
    "WindowScores",
    "check_clips",
    "make_detector",
    "refit",
    "training_normals",
    "run_context",
    "resolve_config",
    "score",
    "record_machine",
    "score_long_recording",
    "train",
    "train_machine",
]

log = logging.getLogger(__name__)

RUNTIME_PARAMS = (
    "device", "cache_dir", "progress", "log_dir", "checkpoint_dir", "resume",
    "precision", "in_memory_mb",
)
"""Run settings (:class:`~soundwatch.training.context.RunContext` fields), never params."""

TOP_LEVEL_PARAMS = ("seed",)
"""Hyper-parameters a config sets at its top level (``seed:``, ``--seed``), not in params."""

TRAIN_SPLIT = "train"
TEST_SPLIT = "test"


# ---------------------------------------------------------------------------- helpers
def _check_data_folder(data: str | os.PathLike[str]) -> Path:
    root = Path(data)
    if not root.exists():
        raise DatasetError(root, "no such data folder")
    if not root.is_dir():
        raise DatasetError(root, "not a folder (give the dataset's root folder)")
    return root


def _discover(
    data: str | os.PathLike[str], seed: int, *, train_normals: int | None = None,
    machines: Sequence[str] | None = None,
) -> list[Clip]:
    """The dataset's clips; clips without a split (MIMII raw) get the DCASE-2020-style one.

    Args:
        data: Dataset root: a known layout, else plain folders
            (:func:`soundwatch.datasets.folders.discover_training`).
        seed: Seed of the split draw (``--split-seed``, default the run's seed).
        train_normals: Normal recordings per machine ID to train on (``--train-normals``).
        machines: The run's ``--machine`` names; one names the machine of plain recordings.
    """
    from soundwatch.datasets import assign_split
    from soundwatch.datasets.folders import discover_training

    root = _check_data_folder(data)
    one = machines[0] if machines and len(machines) == 1 else None
    clips = list(discover_training(root, one))
    if any(c.split is None for c in clips):
        log.info("%s: some clips have no split; assigning one (seed %d)", root, seed)
        clips = assign_split(clips, seed=seed, train_normals=train_normals)
    return clips


def check_clips(
    clips: Sequence[Clip], skip_bad: bool, channel: int | str = 0
) -> tuple[list[Clip], list[dict[str, str]]]:
    """Keep the clips :func:`soundwatch.audio.load` can read.

    Args:
        clips: Clips to check.
        skip_bad: When false, nothing is checked here (the first unreadable file then
            raises :class:`~soundwatch.errors.AudioError` where it is loaded).
        channel: The channel that will be read (a file without it is unreadable).

    Returns:
        ``(good_clips, skipped)`` where ``skipped`` holds ``{"path", "reason"}`` dicts.
    """
    if not skip_bad:
        return list(clips), []
    from soundwatch.audio import load

    good: list[Clip] = []
    skipped: list[dict[str, str]] = []
    for clip in clips:
        try:
            load(clip.path, sr=None, channel=channel)  # decode + validate; no resampling
        except AudioError as exc:
            log.warning("skipping %s: %s", clip.path, exc.reason)
            skipped.append({"path": str(clip.path), "reason": exc.reason})
        else:
            good.append(clip)
    return good, skipped


def _by_machine(clips: Iterable[Clip]) -> dict[str, list[Clip]]:
    out: dict[str, list[Clip]] = {}
    for clip in clips:
        out.setdefault(clip.machine, []).append(clip)
    return dict(sorted(out.items()))


def _pick_machines(found: Iterable[str], wanted: Iterable[str] | None, where: str) -> list[str]:
    found = sorted(set(found))
    if not wanted:
        return found
    wanted = list(dict.fromkeys(wanted))
    unknown = [m for m in wanted if m not in found]
    if unknown:
        raise DatasetError(
            where, f"unknown machine(s) {', '.join(unknown)} (found: {', '.join(found) or 'none'})"
        )
    return wanted


def resolve_config(
    data: str | os.PathLike[str] | None,
    detector: str | None = None,
    config: str | os.PathLike[str] | RunConfig | None = None,
    *,
    machines: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    objective: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    channel: int | str | None = None,
) -> RunConfig:
    """Merge a YAML config (or preset) with explicit options; the options win.

    Args:
        data: Dataset root (stored as an absolute path).
        detector: Detector name (default: the config's, else the recommended ``default``).
        config: YAML file, preset name or a :class:`RunConfig`.
        machines: Machine types to train (``None``: all found).
        params: Detector hyper-parameters, merged over the YAML's ``params``.
        epochs: Shortcut for ``params["epochs"]``.
        objective: Shortcut for ``params["objective"]`` (network detectors).
        seed: Random seed (default: the YAML's, else 0).
        device: ``auto``, ``cpu``, ``cuda`` (default: the YAML's, else ``auto``).
        channel: Audio channel index or ``"mean"`` (default: the YAML's, else 0).

    Returns:
        The resolved, validated config.

    Raises:
        ConfigError: No detector given, an invalid value, or ``epochs``/``objective``
            for a detector without such a parameter.
        DetectorError: Unknown detector name.
    """
    if isinstance(config, RunConfig):
        base: RunConfig | None = config
    elif config is not None:
        base = load_config(config)
    else:
        base = None
    if base is None:
        if not detector:
            from soundwatch.detectors.presets import DEFAULT_DETECTOR

            detector = DEFAULT_DETECTOR  # the recommended detector (docs/benchmarks.md)
        base = RunConfig(detector=detector)
    from soundwatch.detectors import create_detector
    from soundwatch.detectors.registry import resolve_detector_name
    from soundwatch.errors import DetectorError

    extra = dict(params or {})
    if detector:  # ``default``: the run records the preset's real name
        detector = resolve_detector_name(detector)
    name = detector or resolve_detector_name(base.detector)
    create_detector(name)  # raises DetectorError for an unknown name
    shortcuts = (("--epochs", "epochs", epochs), ("--objective", "objective", objective))
    for flag, key, value in shortcuts:
        if value is None:
            continue
        try:
            create_detector(name, **{key: value})
        except DetectorError as exc:
            if not exc.reason.startswith("unknown parameter"):  # a bad value, not a bad name
                raise ConfigError(flag, f"detector {name!r} does not accept {key}={value!r} "
                                  f"({exc.reason})") from None
            raise ConfigError(flag, f"detector {name!r} has no {key!r} parameter "
                              f"({exc.reason})") from None
        extra[key] = value
    resolved = base.override(
        detector=detector,
        params=extra,
        data=str(Path(data).resolve()) if data is not None else None,
        machines=machines,
        seed=seed,
        device=device,
        channel=channel,
    )
    if resolved.detector != name:  # a YAML's ``detector: default``: record the real name
        import dataclasses

        resolved = dataclasses.replace(resolved, detector=name)
    for key in (*RUNTIME_PARAMS, *TOP_LEVEL_PARAMS):
        if key in resolved.params:
            option = f"--{key.replace('_', '-')} or top-level '{key}:'" if key in (
                "seed", "device") else "the pipeline"
            raise ConfigError(f"params.{key}", f"set by {option}, not as a detector parameter")
    return resolved


def _cache_folder(cache_dir: str | os.PathLike[str] | None, no_cache: bool) -> str | None:
    """The feature-cache folder: ``None`` with ``no_cache``, else ``cache_dir`` or the default."""
    if no_cache:
        return None
    if cache_dir is not None:
        return str(cache_dir)
    from soundwatch.features.cache import default_cache_dir

    return str(default_cache_dir())


def make_detector(cfg: RunConfig) -> Any:
    """The (unfitted) detector a resolved config describes, with the config's seed."""
    from soundwatch.detectors import create_detector

    return create_detector(cfg.detector, **{**cfg.params, "seed": cfg.seed})


def run_context(cfg: RunConfig | None = None, **settings: Any) -> Any:
    """The :class:`~soundwatch.training.context.RunContext` of a command (device from ``cfg``)."""
    from soundwatch.training.context import RunContext

    if cfg is not None and "device" not in settings:
        settings["device"] = cfg.device
    if cfg is not None and "channel" not in settings:
        settings["channel"] = cfg.channel
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()
                if v is not None}
    return RunContext(**settings)


def _merge_table(path: Path, machine: str, table: pd.DataFrame) -> pd.DataFrame:
    """Replace ``machine``'s rows of the scores table at ``path`` (if any) by ``table``."""
    import pandas as pd

    from soundwatch.scores import read_scores_table

    if path.is_file():
        old = read_scores_table(path)
        old = old[old["machine"] != machine]
        if len(old):
            table = pd.concat([old, table], ignore_index=True)
    return table.sort_values(["machine", "path"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------- train
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
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
    skip_bad: bool = False,
    resume: bool = False,
    progress: bool = False,
    runs_dir: str | os.PathLike[str] = "runs",
    on_machine: Callable[[str, str], None] | None = None,
    train_normals: int | None = None,
    split_seed: int | None = None,
    backend: str = "local",
    ray_settings: Any = None,
    devices: int | str | list[int] | None = None,
    strategy: str | None = None,
    num_nodes: int = 1,
    threshold: str | None = None,
    channel: int | str | None = None,
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
        config: YAML file or preset name (``detector:`` + ``params:``), or a RunConfig.
        machines: Train only these machine types (default: every type found).
        out: Run folder (default ``<runs_dir>/<detector>-<timestamp>``).
        params: Hyper-parameter overrides (merged over the config's ``params``).
        epochs: Shortcut for ``params["epochs"]``.
        objective: Shortcut for ``params["objective"]``.
        seed: Random seed (default: config's, else 0).
        device: ``auto``/``cpu``/``cuda`` (default: config's, else ``auto``).
        cache_dir: Feature cache folder (default: the user cache folder,
            ``soundwatch.features.cache.default_cache_dir()``).
        no_cache: Do not cache features (overrides ``cache_dir``).
        skip_bad: Check every clip first; skip and record unreadable ones instead of
            failing on the first.
        resume: Reuse ``out``: skip machine types whose detector is already saved, and
            continue an interrupted network's training from its last checkpoint.
        progress: Let the detector show progress bars.
        runs_dir: Parent of the default run folder.
        on_machine: Called as ``on_machine(machine, event)`` with ``"start"``,
            ``"skip"`` and ``"done"`` (for CLI feedback).
        train_normals: Clips without a split (MIMII raw): normal recordings per machine
            ID to train on, the rest are tested (default: see
            :func:`soundwatch.datasets.assign_split`).
        split_seed: Seed of that split (default: ``seed``); recorded in ``run.json`` so
            that ``score`` tests the same clips.
        backend: ``"local"`` (machine types one after the other here) or ``"ray"`` (one
            Ray task per machine type, :mod:`soundwatch.scale`; a failed machine type
            does not stop the others).
        ray_settings: :class:`soundwatch.scale.RaySettings` of the Ray backend (default: a local
            Ray instance, one CPU per task).
        devices: Lightning ``devices`` for network training (several: DDP).
        strategy: Lightning ``strategy`` (``ddp``...; see
            :func:`soundwatch.training.fit.launch_strategy`).
        num_nodes: Lightning ``num_nodes``.
        threshold: The decision policy fitted on each machine type's out-of-fold
            training scores and saved as ``decisions/<machine>.json`` (default
            ``far:0.01``; see :mod:`soundwatch.decisions`).
        channel: The audio channel to read from multi-channel files (an index, 0 the
            first, or ``"mean"``; default: the config's, else 0). Recorded in
            ``config.yaml`` and ``run.json``; scoring, the service and the export use it.

    Returns:
        The run (its ``root`` is the run folder, ``info`` the ``run.json`` content).

    Raises:
        DatasetError: Missing data folder, no clips, unknown machine, or no training
            clips for a machine.
        DetectorError: Unknown detector or parameter, or a training failure.
        ConfigError: Invalid config, or ``out`` already holds a run and not ``resume``.
        AudioError: An unreadable clip (without ``skip_bad``).
        MachinesFailed: Ray backend: some machine types failed (the others are saved).
    """
    from soundwatch.scale import check_backend

    check_backend(backend)  # Ray missing: one line with the install hint
    policy = _check_policy(threshold)
    _check_data_folder(data)  # the cheapest mistake first: no detector import needed
    cfg = resolve_config(
        data, detector, config, machines=machines, params=params, epochs=epochs,
        objective=objective, seed=seed, device=device, channel=channel,
    )
    cache = _cache_folder(cache_dir, no_cache)
    if cache is not None:  # a cache folder that is a file or read-only fails before any work
        from soundwatch.features.cache import FeatureCache

        FeatureCache(Path(cache)).prepare()
    # Fail on bad parameters before anything is written.
    probe = make_detector(cfg)
    supervised = bool(getattr(probe, "supervised", False))
    del probe

    import time

    start = time.perf_counter()
    split_draw = cfg.seed if split_seed is None else int(split_seed)
    clips = _discover(cfg.data, split_draw, train_normals=train_normals,  # type: ignore[arg-type]
                      machines=cfg.machines)
    discover_s = time.perf_counter() - start
    train_clips = [c for c in clips if c.split == TRAIN_SPLIT]
    found = sorted({c.machine for c in clips})
    chosen = _pick_machines(found, cfg.machines, str(cfg.data))
    by_machine = _by_machine(
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
    run = Run.create(cfg, out, runs_dir=runs_dir, resume=resume)
    if train_normals is not None or split_seed is not None:
        run.info["split"] = {"seed": split_draw, "train_normals": train_normals}
    run.record_step("discover", discover_s, clips=len(clips))
    run.info["channel"] = cfg.channel
    todo = []
    for machine in chosen:
        if resume and run.has_detector(machine) and complete_machine(run, machine):
            log.info("%s: already trained, skipped (resume)", machine)
            if on_machine:
                on_machine(machine, "skip")
            continue
        todo.append(machine)
    job = TrainJob(cfg=cfg, run_root=str(run.root), cache_dir=cache, progress=progress,
                   resume=resume, skip_bad=skip_bad, supervised=supervised,
                   devices=devices, strategy=strategy, num_nodes=num_nodes,
                   threshold=policy)
    if backend == "ray":
        from soundwatch.scale import MachinesFailed, RaySettings
        from soundwatch.scale.ray_backend import train_on_ray

        failures = train_on_ray(run, job, {m: by_machine[m] for m in todo},
                                ray_settings or RaySettings(), on_machine)
        _check_abnormal_folders(run, clips, [m for m in chosen if m not in failures])
        run.info["failed"] = failures
        run.info["finished"] = not failures
        run.save_info()
        if failures:
            raise MachinesFailed(run.root, failures)
        return run
    for machine in todo:
        if on_machine:
            on_machine(machine, "start")
        record_machine(run, train_machine(job, machine, by_machine[machine]))
        if on_machine:
            on_machine(machine, "done")
    _check_abnormal_folders(run, clips, chosen)
    run.info["finished"] = True
    run.save_info()
    return run


def _check_channel(clips: Sequence[Clip], channel: int | str) -> None:
    """Raise for the first clip that lacks ``channel`` (headers only: fast).

    Raises:
        AudioError: A file without that channel, or unreadable.
    """
    if channel in (0, "mean"):  # every audio file has them
        return
    from soundwatch.audio import info

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
    from soundwatch.datasets.folders import FOLDER_LAYOUT

    for machine in machines:
        abnormal = [c for c in clips if c.machine == machine and c.layout == FOLDER_LAYOUT
                    and c.label == 1]
        if not abnormal:
            continue
        from soundwatch.abnormal_check import check_abnormal

        with run.step(f"abnormal_check/{machine}", clips=len(abnormal)):
            facts = check_abnormal(run, machine, abnormal)
        run.set_machine_info(machine, abnormal_check=facts)


@dataclass(frozen=True)
class TrainJob:
    """What every machine type's training shares (picklable: a Ray task gets a copy).

    Attributes:
        cfg: The resolved config.
        run_root: The run folder.
        cache_dir: Feature-cache folder (``None``: no cache).
        progress: Show progress.
        resume: Continue interrupted trainings from their checkpoints.
        skip_bad: Skip unreadable clips instead of failing.
        supervised: The detector trains on labelled anomalies too.
        devices: Lightning ``devices`` for network training (several: DDP).
        strategy: Lightning ``strategy``.
        num_nodes: Lightning ``num_nodes``.
        threshold: The decision policy (:mod:`soundwatch.decisions`).
    """

    cfg: RunConfig
    run_root: str
    cache_dir: str | None = None
    progress: bool = False
    resume: bool = False
    skip_bad: bool = False
    supervised: bool = False
    devices: int | str | list[int] | None = None
    strategy: str | None = None
    num_nodes: int = 1
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

    from soundwatch.decisions import save_decider
    from soundwatch.scores import add_decisions, make_scores_table, write_scores_table

    cfg = job.cfg
    run = Run(job.run_root)
    good, skipped = check_clips(clips, job.skip_bad, cfg.channel)
    if not good:
        raise DatasetError(f"{cfg.data} [{machine}]", "every training clip is unreadable")
    tmp_log = run.train_log_dir / f".{machine}"
    checkpoints = run.root / "checkpoints" / machine
    context = run_context(cfg, cache_dir=job.cache_dir, progress=job.progress, log_dir=tmp_log,
                          checkpoint_dir=checkpoints, resume=job.resume, devices=job.devices,
                          strategy=job.strategy, num_nodes=job.num_nodes)
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
                           machine_self_check(det, _normal(good, labels), machine))
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
    from soundwatch.errors import EvaluationError
    from soundwatch.scores import read_scores_table

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
    from soundwatch.errors import EvaluationError
    from soundwatch.scores import read_scores_table

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


def machine_self_check(det: Any, normal: Sequence[Clip], machine: str) -> dict[str, Any] | None:
    """The self-check of a fitted detector (:mod:`soundwatch.selfcheck`), JSON-ready.

    Reads back up to :data:`SELF_CHECK_CLIPS` of the normal training clips; never fails the
    training (a problem is logged and the check left out).
    """
    import numpy as np

    from soundwatch.audio import DEFAULT_SR, load
    from soundwatch.decisions import Decider
    from soundwatch.errors import SoundwatchError
    from soundwatch.selfcheck import self_check

    try:
        decider = Decider.from_detector(det)
        members = [m.train_scores_ for m in getattr(det, "members_", None) or []
                   if getattr(m, "train_scores_", None) is not None]
        picks = np.unique(np.linspace(0, len(normal) - 1, min(len(normal), SELF_CHECK_CLIPS))
                          .round().astype(int)) if normal else []
        signals = []
        for i in picks:
            with contextlib.suppress(SoundwatchError):
                signals.append(load(normal[int(i)].path, sr=DEFAULT_SR))
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
    from soundwatch.scores import read_scores_table, write_scores_table

    if result.skipped:
        run.add_skipped(result.skipped, step=f"train/{result.machine}")
    run.record_step(f"train/{result.machine}", result.seconds, clips=result.clips)
    run.record_step(f"train_scores/{result.machine}", result.score_seconds, clips=result.clips)
    table = read_scores_table(train_part_path(run, result.machine))
    write_scores_table(_merge_table(run.train_scores_path, result.machine, table),
                       run.train_scores_path)
    facts: dict[str, Any] = {}
    if result.self_check is not None:
        facts["self_check"] = result.self_check
    run.set_machine_info(result.machine, train_clips=result.clips, skipped=len(result.skipped),
                         labels=result.labels, **facts)
    from soundwatch.decisions import read_decider, record_decider

    decider = read_decider(run.root, result.machine)
    if decider is not None:
        record_decider(run, result.machine, decider, reason="train")


def _check_policy(threshold: str | None) -> str:
    """The decision policy to fit at training (parsed early: a bad one fails first)."""
    from soundwatch.decisions import DEFAULT_POLICY
    from soundwatch.evaluation.thresholds import parse_threshold

    spec = parse_threshold(threshold or DEFAULT_POLICY)
    if spec.optimistic:
        raise ConfigError("--threshold", "best-f1 needs test labels; at training choose "
                          "far:RATE, gamma:Q, contamination:Q or fixed:V")
    return str(spec)


def fit_decider(table: Any, policy: str, clips: Sequence[Clip] = ()) -> Any:
    """A machine type's decision rule from its training scores table.

    Fitted per section where the table has several (:class:`soundwatch.decisions.Decider`),
    with the training recordings' sample rates (the sensor check's expected rates).
    """
    from soundwatch.decisions import Decider

    rates = sorted(_sample_rates(clips))
    sections = table["section"].tolist() if "section" in table else None
    return Decider.from_training_scores(table["score"].to_numpy(), policy, sections, rates)


def _sample_rates(clips: Sequence[Clip]) -> set[int]:
    """The sample rates of some recordings (headers only; unreadable ones left out)."""
    from soundwatch.audio import info
    from soundwatch.errors import SoundwatchError

    rates: set[int] = set()
    for clip in clips:
        try:
            rates.add(int(info(clip.path).samplerate))
        except SoundwatchError:
            continue
    return rates


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


def refit(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    params: Mapping[str, Any],
    *,
    machines: Iterable[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
    progress: bool = False,
) -> Run:
    """Refit the scorers of a trained run's detectors into a new run, keeping the networks.

    As the DCASE baseline scores one trained model with ``--score MSE|MAHALA``: the
    networks (and front-ends) are loaded as trained; only the parts after them change
    (``scorer``, ``scorer_params``, ``pooling``...), are refitted on the same training
    clips, and get new out-of-fold training scores and thresholds.

    Args:
        run_dir: A run folder written by :func:`train`.
        out: The new run folder (must not hold a run).
        params: The changes, as ``-p`` gives them (``scorer=selective_mahalanobis``,
            ``scorer__variant=baseline``, ``pooling=max``...).
        machines: Refit only these machine types (default: every trained one).
        data: Dataset root (default: the one recorded in the run).
        cache_dir: Feature-cache folder (default: the user cache folder).
        no_cache: Do not cache features.
        progress: Show progress.

    Returns:
        The new run.

    Raises:
        ConfigError: ``out`` already holds a run, or no data folder is known.
        DetectorError: A change that would need retraining the network.
    """
    from soundwatch.decisions import read_decider, record_decider, save_decider
    from soundwatch.scores import add_decisions, make_scores_table, write_scores_table

    source = Run.open(run_dir)
    cfg = source.config()
    root = data if data is not None else cfg.data
    if root is None:
        raise ConfigError(source.config_path, "no data folder recorded; give --data")
    new_cfg = cfg.override(params=dict(params), data=str(Path(root).resolve()))
    chosen = _pick_machines(source.machines(), machines, str(source.root))
    by_machine = training_normals(source, root)
    run = Run.create(new_cfg, out)
    run.info["refit_of"] = str(Path(run_dir).resolve())
    context = run_context(new_cfg, cache_dir=_cache_folder(cache_dir, no_cache),
                          progress=progress)
    for machine in chosen:
        mclips = by_machine.get(machine)
        if not mclips:
            raise DatasetError(f"{root} [{machine}]", "no normal training clips to refit on")
        det = source.load_detector(machine)
        with run.step(f"refit/{machine}", clips=len(mclips)):
            det.refit_scorer(mclips, context, **params)
        table = make_scores_table(mclips, det.training_scores())
        old = read_decider(source.root, machine)
        decider = fit_decider(table, old.policy if old is not None else _check_policy(None),
                              mclips)
        det.threshold_ = decider.threshold
        save_decider(run.root, machine, decider)
        record_decider(run, machine, decider, reason="refit", previous=old)
        table = add_decisions(table, {machine: decider})
        write_scores_table(_merge_table(run.train_scores_path, machine, table),
                           run.train_scores_path)
        det.save(run.detector_dir(machine))
        log_src = source.train_log_path(machine)
        if log_src.is_file():
            run.train_log_path(machine).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_src, run.train_log_path(machine))
        check = machine_self_check(det, mclips, machine)
        run.set_machine_info(machine, train_clips=len(mclips), refit=True,
                             **({"self_check": check} if check is not None else {}))
    run.info["finished"] = True
    run.save_info()
    return run


def training_normals(run: Run, data: str | os.PathLike[str] | None = None
                     ) -> dict[str, list[Clip]]:
    """The normal training clips of a run, per machine type.

    Found again in the run's data folder, plus the recordings added as normal since
    (``soundwatch add-normal``).

    Args:
        run: The trained run.
        data: Dataset root (default: the one recorded in the run).

    Raises:
        ConfigError: No data folder is known.
        DatasetError: The data folder is gone or unreadable.
    """
    cfg = run.config()
    root = data if data is not None else cfg.data
    if root is None:
        raise ConfigError(run.config_path, "no data folder recorded; give --data")
    split = run.info.get("split") or {}
    clips = _discover(root, int(split.get("seed", cfg.seed)),
                      train_normals=split.get("train_normals"))
    from soundwatch.monitor.feedback import added_normals

    found = _by_machine(c for c in clips if c.split == TRAIN_SPLIT and c.label in (None, 0))
    for machine in run.machines():  # recordings added as normal since (add-normal)
        found.setdefault(machine, []).extend(added_normals(run, machine))
    return {m: c for m, c in found.items() if c}


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


# ---------------------------------------------------------------------------- score
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def _channel_line(channel: int | str) -> str:
    """The channel's part of a job key (none for channel 0: keys of earlier scorings hold)."""
    return "" if channel == 0 else f"channel={channel}\n"


def _part_key(run: Run, machine: str, clips: Sequence[Clip], skip_bad: bool,
              channel: int | str = 0) -> str:
    """Identity of one machine's scoring job: its detector files, clip list and options."""
    from soundwatch.features.cache import fingerprint

    digest = hashlib.sha256(f"skip_bad={skip_bad}\n{_channel_line(channel)}".encode())
    digest.update(f"{run.detector_fingerprint(machine)}\n".encode())  # every detector file
    for clip in sorted(clips, key=lambda c: str(c.path)):  # paths AND contents (issue 19)
        line = f"{clip.path}\t{clip.machine}\t{fingerprint(clip.path)}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:20]


def _job_key(clips: Sequence[Clip], machines: Sequence[str], skip_bad: bool,
             channel: int | str = 0) -> str:
    """Identity of a whole scoring (which clips, which machines, which options)."""
    head = f"skip_bad={skip_bad}\n{','.join(machines)}\n{_channel_line(channel)}"
    digest = hashlib.sha256(head.encode("utf-8", "surrogateescape"))
    for clip in sorted(clips, key=lambda c: str(c.path)):
        digest.update(f"{clip.path}\t{clip.machine}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:20]


def _now_stamp() -> str:
    import datetime as dt

    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _new_scoring_dir(run: Run, label: str) -> Path:
    """A new, unused ``scores/<label>-<timestamp>[-N]`` folder name under the run."""
    base = f"{_NAME_CHARS.sub('_', label).strip('_.') or 'scores'}-{_now_stamp()}"
    candidate = run.scores_dir / base
    n = 2
    while candidate.exists() or candidate.name in (run.info.get("scorings") or {}):
        candidate = run.scores_dir / f"{base}-{n}"
        n += 1
    return candidate


def _scoring_folder(
    run: Run, out: str | os.PathLike[str] | None, label: str, key: str
) -> Path:
    """Where a scoring writes: ``out``, an unfinished scoring of the same job, or a new one.

    Raises:
        ConfigError: ``out`` already holds a finished scoring of other clips or options.
    """
    if out is not None:
        out_dir = Path(out)
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigError(out_dir, "--out is a file; give a folder")
        marker = out_dir / "scoring.json"
        if (out_dir / "scores.csv").is_file() and _read_key(marker) != key:
            raise ConfigError(out_dir, "already holds scores of other clips or options "
                              "(choose another --out; earlier scores are never overwritten)")
        return out_dir
    for name, entry in (run.info.get("scorings") or {}).items():
        folder = run.scores_dir / name
        if (isinstance(entry, dict) and entry.get("key") == key and not entry.get("finished")
                and folder.is_dir()):
            log.info("%s: resuming the unfinished scoring %s", run.root, folder)
            return folder
    return _new_scoring_dir(run, label)


def _scoring_name(run: Run, out_dir: Path) -> str:
    """The name run.json records a scoring under: relative to ``scores/`` when inside it."""
    try:
        return str(out_dir.resolve().relative_to(run.scores_dir.resolve()))
    except ValueError:
        return str(out_dir.resolve())


def _paths_of(data: Any) -> list[Path]:
    if data is None:
        return []
    if isinstance(data, str | os.PathLike):
        return [Path(data)]
    return [Path(p) for p in data]


def _clips_to_score(
    run: Run, cfg: RunConfig, paths: Sequence[Path], trained: Sequence[str],
    machines: Sequence[str] | None,
) -> tuple[list[Clip], str, str]:
    """The clips a scoring covers, a label for its folder name and the data it read."""
    from soundwatch.datasets import assign_split, collect_recordings

    split = run.info.get("split") or {}
    split_seed = split.get("seed", cfg.seed)
    train_normals = split.get("train_normals")
    if not paths:
        if cfg.data is None:
            raise ConfigError(run.config_path, "no data folder recorded; give DATA")
        clips = _discover(cfg.data, split_seed, train_normals=train_normals,
                          machines=cfg.machines)
        return [c for c in clips if c.split == TEST_SPLIT], "test", str(Path(cfg.data).resolve())
    hint = machines[0] if machines and len(machines) == 1 else None
    clips = collect_recordings(paths, trained, hint)
    if any(c.split is None for c in clips):  # MIMII raw: the run's own split, its test part
        clips = [c for c in assign_split(clips, seed=split_seed, train_normals=train_normals)
                 if c.split == TEST_SPLIT]
    label = paths[0].stem if len(paths) == 1 else f"{paths[0].stem}+{len(paths) - 1}"
    return clips, label, ", ".join(str(p.resolve()) for p in paths)


def score(
    run_dir: str | os.PathLike[str],
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    skip_bad: bool = False,
    machines: Iterable[str] | None = None,
    device: str | None = None,
    progress: bool = False,
    explain: bool = False,
    on_machine: Callable[[str, str], None] | None = None,
    backend: str = "local",
    ray_settings: Any = None,
    threshold: str | None = None,
    channel: int | str | None = None,
) -> pd.DataFrame:
    """Score recordings with a run's trained detectors, with decisions and percentiles.

    ``data`` may be the run's dataset (the default: its test split), another dataset
    folder, or any files and folders of recordings
    (:func:`soundwatch.datasets.collect_recordings`): clips of a known layout keep their
    metadata, other recordings are scored by the detector of the machine type their
    path names, else the one ``machines`` names, else the run's only one.

    Every scoring writes into its own folder, by default a new
    ``<run>/scores/<label>-<YYYYmmdd-HHMMSS>/``, never over earlier scores:
    ``scores.csv`` (the scores table with ``threshold``, ``decision`` and ``percentile``
    columns, see :mod:`soundwatch.decisions`), the DCASE files
    (``anomaly_score_<machine>_section_<XX>_test.csv``; ``anomaly_score_<machine>_id_<XX>.csv``
    for DCASE 2020 data), ``scoring.json`` and, with ``explain``, ``explain/*.png`` for
    the flagged clips. Each machine type's scores are also kept in ``parts/<machine>.csv``,
    so a rerun after an interruption resumes the unfinished scoring of the same clips and
    skips the machine types already done. ``run.json`` records each scoring under
    ``scorings`` and its steps as ``score/<name>/...``.

    Args:
        run_dir: A run folder written by :func:`train`.
        data: Dataset root, or files and folders of recordings (default: the run's data).
        out: Output folder (default: a new folder under ``<run>/scores``).
        skip_bad: Skip and record unreadable clips instead of failing on the first.
        machines: Score only these machine types; with one, recordings whose names say
            nothing are scored by its detector.
        device: Override the device the detectors were saved with.
        progress: Let the detectors show progress bars.
        explain: Write an explanation PNG (:mod:`soundwatch.explain`) per flagged clip.
        on_machine: Called as ``on_machine(machine, event)`` with ``"start"``,
            ``"skip"`` (already scored) and ``"done"``.
        backend: ``"local"`` (here) or ``"ray"``: the clips of the machine types not yet
            scored are scored with Ray Data (:mod:`soundwatch.scale`); the tables and
            files written are the same.
        ray_settings: :class:`soundwatch.scale.RaySettings` of the Ray backend.
        threshold: Decide with this policy instead of the run's saved rule (refitted
            on the same out-of-fold training scores; recorded with the scoring).

    Every clip also gets a sensor check (:mod:`soundwatch.sensor`): ``status`` and
    ``status_reason`` columns; a clip with a sensor problem keeps its score but is
    never decided anomalous.
        channel: The audio channel to read (an index or ``"mean"``; default: the one
            the run trained on). Recorded in ``scoring.json`` and ``run.json``.

    Returns:
        The scores table (:data:`soundwatch.scores.SCORE_COLUMNS` + decision columns);
        ``table.attrs["scores_dir"]`` is the folder written.

    Raises:
        ConfigError: Missing run folder, no data folder recorded or given, a recording
            whose machine type cannot be told, or ``out`` holding other scores.
        DetectorError: The run folder holds no trained detector.
        DatasetError: Missing data or no clips to score for the trained machines.
        AudioError: An unreadable clip (without ``skip_bad``).
    """
    import pandas as pd

    from soundwatch.datasets import ANY_LAYOUT
    from soundwatch.scale import check_backend
    from soundwatch.scores import (
        make_scores_table,
        read_scores_table,
        write_dcase_scores,
        write_scores_table,
    )

    check_backend(backend)
    policy = None if threshold is None else _check_policy(threshold)
    run = Run.open(run_dir)
    cfg = run.config()
    from soundwatch.config import parse_channel

    channel = cfg.channel if channel is None else parse_channel(channel)
    if backend == "ray" and channel != cfg.channel:
        raise ConfigError("--channel", "the Ray backend reads the run's channel "
                          f"({cfg.channel}); score another channel locally")
    trained = run.machines()
    wanted = list(machines) if machines else None
    chosen = _pick_machines(trained, wanted, str(run.root))
    paths = _paths_of(data)
    import time

    started = time.perf_counter()
    clips, label, source = _clips_to_score(run, cfg, paths, trained, wanted)
    discover_s = time.perf_counter() - started
    tests = _by_machine(clips)
    untrained = sorted(set(tests) - set(trained))
    if untrained:
        log.warning("%s: no trained detector for %s; their clips are left out",
                    run.root, ", ".join(untrained))
    key = _job_key([c for c in clips if c.machine in chosen], chosen, skip_bad, channel)
    out_dir = _scoring_folder(run, out, label, key)
    name = _scoring_name(run, out_dir)
    scorings = run.info.setdefault("scorings", {})
    entry = scorings.setdefault(name, {})
    entry.update({"data": source, "key": key, "machines": chosen, "finished": False,
                  "folder": str(out_dir.resolve()), "channel": channel})
    entry.setdefault("started", _now_stamp())
    run.record_step(f"score/{name}/discover", discover_s, clips=len(clips))
    out_dir.mkdir(parents=True, exist_ok=True)
    from soundwatch.atomic import remove_leftovers

    remove_leftovers(out_dir)  # temporary files of a killed scoring (issue 19)
    write_json(out_dir / "scoring.json", {"key": key, "data": source, "machines": chosen,
                                          "run": str(run.root.resolve()), "channel": channel})
    parts_dir = out_dir / "parts"
    tables: list[pd.DataFrame] = []
    deciders: dict[str, Any] = {}
    detectors: dict[str, Any] = {}
    part_keys = {m: _part_key(run, m, tests[m], skip_bad, channel)
                 for m in chosen if tests.get(m)}
    remote: dict[str, Any] = {}  # Ray backend: machine -> (good clips, skipped, scores)
    if backend == "ray":
        from soundwatch.scale import RaySettings
        from soundwatch.scale.ray_backend import score_on_ray

        todo = {m: tests[m] for m, k in part_keys.items() if not _part_done(parts_dir, m, k)}
        with run.step(f"score/{name}/ray", clips=sum(len(c) for c in todo.values())):
            remote = score_on_ray(run, todo, ray_settings or RaySettings(), skip_bad=skip_bad,
                                  device=device, progress=progress)
    for machine in chosen:
        mclips = tests.get(machine, [])
        if not mclips:
            if not paths:
                log.warning("%s: no test clips for machine %r in %s", run.root, machine, source)
            continue
        part_key = part_keys[machine]
        part, marker = parts_dir / f"{machine}.csv", parts_dir / f"{machine}.json"
        det = None
        if _part_done(parts_dir, machine, part_key):
            log.info("%s: already scored, skipped", machine)
            table = _decide(run, machine, read_scores_table(part), None, policy, deciders)
            if on_machine:
                on_machine(machine, "skip")
        else:
            if on_machine:
                on_machine(machine, "start")
            if machine in remote:
                good, skipped = remote[machine][0], remote[machine][1]
            else:
                good, skipped = check_clips(mclips, skip_bad, channel)
            if skipped:
                run.add_skipped(skipped, step=f"score/{name}/{machine}")
            if not good:
                raise DatasetError(f"{source} [{machine}]", "every clip is unreadable")
            det = run.load_detector(machine)
            _set_runtime(det, device=device, progress=progress, channel=channel)
            with run.step(f"score/{name}/{machine}", clips=len(good), skipped=len(skipped)):
                values = remote[machine][2] if machine in remote else det.score(good)
                table = make_scores_table(good, values)
            table = _sensor_status(run, machine, table, cfg)
            table = _decide(run, machine, table, det, policy, deciders)
            write_scores_table(table, part)
            write_json(marker, {"key": part_key, "clips": len(good), "skipped": skipped})
            if on_machine:
                on_machine(machine, "done")
        if det is not None:
            detectors[machine] = det
        tables.append(table)
    if not tables:
        raise DatasetError(
            source,
            f"no clips to score for the trained machine(s) {', '.join(chosen)}"
            + ("" if paths else f" (split '{TEST_SPLIT}')"),
        )
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    table = table.sort_values(["machine", "section", "path"], kind="stable", na_position="first")
    table = table.reset_index(drop=True)
    known = table[table["layout"] != ANY_LAYOUT] if "layout" in table else table
    if len(known):  # DCASE files for clips of a DCASE layout only
        write_dcase_scores(known, out_dir)
    if explain:
        from soundwatch.explain import explain_flagged

        with run.step(f"score/{name}/explain") as facts:
            written = explain_flagged(run, table, out_dir / "explain", detectors=detectors,
                                      deciders=deciders, device=device)
            facts["images"] = len(written)
    write_scores_table(table, out_dir / "scores.csv")  # last: "this scoring is finished"
    entry.update({"finished": True, "clips": len(table),
                  "flagged": int(table["decision"].sum()),
                  "sensor": int((table["status"] == "sensor").sum()) if "status" in table else 0,
                  "decisions": {m: d.summary() for m, d in deciders.items()}})
    run.info.setdefault("scored", {})[str(out_dir)] = {"data": source, "clips": len(table)}
    run.save_info()
    table.attrs["scores_dir"] = str(out_dir)
    table.attrs["decisions"] = entry["decisions"]
    return table


def _decide(run: Run, machine: str, table: pd.DataFrame, det: Any, policy: str | None,
            deciders: dict[str, Any]) -> pd.DataFrame:
    """A machine type's scores with the decisions of its rule (``deciders`` gets the rule)."""
    from soundwatch.decisions import machine_decider
    from soundwatch.errors import DetectorError
    from soundwatch.scores import add_decisions

    if machine not in deciders:
        try:
            deciders[machine] = machine_decider(run, machine, det, policy=policy)
        except DetectorError as exc:
            log.warning("%s: no threshold, no decisions (%s)", machine, exc)
    return add_decisions(table, {k: v for k, v in deciders.items() if k == machine})


def _sensor_status(run: Run, machine: str, table: pd.DataFrame, cfg: Any) -> pd.DataFrame:
    """``status``/``status_reason`` of each scored clip (:func:`soundwatch.sensor.check_file`)."""
    from soundwatch.decisions import read_decider
    from soundwatch.scores import add_status
    from soundwatch.sensor import STATUS_ERROR, SensorCheck, check_file

    saved = read_decider(run.root, machine)
    rates = saved.sample_rates if saved is not None else ()
    channel = getattr(cfg, "channel", None)
    checks = []
    for path in table["path"]:
        check = check_file(str(path), rates, channel)
        if check.status == STATUS_ERROR:  # scored fine, so the reader's complaint is moot
            check = SensorCheck()
        checks.append(check)
    flagged = [c for c in checks if not c.ok]
    if flagged:
        log.warning("%s: %d clip(s) with a sensor problem (status 'sensor', never decided "
                    "anomalous), e.g. %s", machine, len(flagged), flagged[0].reason)
    return add_status(table, checks)


def _part_done(parts_dir: Path, machine: str, key: str) -> bool:
    """Whether ``parts/<machine>.csv`` holds this machine's scores of the same job."""
    part, marker = parts_dir / f"{machine}.csv", parts_dir / f"{machine}.json"
    return part.is_file() and marker.is_file() and _read_key(marker) == key


def _read_key(marker: Path) -> str | None:
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def _set_runtime(det: Any, *, device: str | None, progress: bool,
                 channel: int | str | None = None) -> None:
    """Give a loaded detector the run settings of this command (never saved).

    ``channel`` ``None`` keeps the one the detector was given (the run's, by
    :meth:`~soundwatch.runs.Run.load_detector`).
    """
    if channel is None:
        channel = det._context(None).channel
    det.set_context(run_context(device=device, progress=progress, channel=channel))


def _normal(clips: Sequence[Clip], labels: Any) -> list[Clip]:
    """The normal clips among training clips (all of them when there are no labels)."""
    if labels is None:
        return list(clips)
    return [c for c, y in zip(clips, labels, strict=True) if y == 0]


# ---------------------------------------------------------------------------- long files
@dataclass(frozen=True)
class WindowScores:
    """Scores, decisions and events of a long recording's sliding windows.

    Attributes:
        csv_path: Time series CSV (``start_s,end_s,score,threshold,decision,percentile,
            status,status_reason``).
        png_path: Plot of the score over time with the threshold and the events shaded
            (``None`` if not drawn).
        machine: The machine type whose detector scored the windows.
        windows: Number of windows scored.
        starts: Window start times (s).
        ends: Window end times (s).
        scores: Window scores (higher = more anomalous).
        threshold: The detector's threshold (NaN when it has none).
        decisions: 1 per anomalous window.
        percentiles: Each window's percentile among the normal training scores.
        events: Flagged windows merged into events (:class:`soundwatch.events.Event`).
        events_csv: The events as CSV.
        events_json: The events as JSON.
        statuses: Each window's sensor status (``ok`` or ``sensor``; a ``sensor``
            window, e.g. a silent stretch, is never flagged).
        reasons: Why, per window (``""`` when ok).
    """

    csv_path: Path
    png_path: Path | None
    machine: str
    windows: int
    starts: tuple[float, ...]
    ends: tuple[float, ...]
    scores: tuple[float, ...]
    threshold: float = float("nan")
    decisions: tuple[int, ...] = ()
    percentiles: tuple[float, ...] = ()
    events: tuple[Any, ...] = ()
    events_csv: Path | None = None
    events_json: Path | None = None
    statuses: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """The time series as a DataFrame (the CSV's columns)."""
        import pandas as pd

        n = len(self.scores)
        return pd.DataFrame({
            "start_s": self.starts, "end_s": self.ends, "score": self.scores,
            "threshold": [self.threshold] * n,
            "decision": self.decisions or (0,) * n,
            "percentile": self.percentiles or (float("nan"),) * n,
            "status": self.statuses or ("ok",) * n,
            "status_reason": self.reasons or ("",) * n,
        })


def score_long_recording(
    run_dir: str | os.PathLike[str],
    wav: str | os.PathLike[str],
    window: float,
    hop: float,
    machine: str | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    batch_windows: int = 64,
    device: str | None = None,
    plot: bool = True,
    gap: float = 0.0,
    threshold: str | None = None,
    channel: int | str | None = None,
) -> WindowScores:
    """Score a long recording in sliding windows: scores, decisions and anomalous events.

    The file is streamed (:func:`soundwatch.audio.stream`): at most ``batch_windows``
    windows are in memory at once, so an hour of audio is fine. Each window gets the
    detector's threshold, a decision and a percentile (:mod:`soundwatch.decisions`);
    flagged windows that overlap or touch are merged into events
    (:func:`soundwatch.events.merge_events`).

    Args:
        run_dir: A run folder written by :func:`train`.
        wav: The recording.
        window: Window length (s); not longer than the recording.
        hop: Step between window starts (s).
        machine: Which trained machine type's detector to use; optional when the run
            has exactly one.
        out: Output folder (default: a new ``<run>/scores/<stem>-<timestamp>/``); files
            are ``<stem>_windows.csv``, ``<stem>_events.csv``, ``<stem>_events.json``
            and ``<stem>_windows.png``.
        batch_windows: Windows scored per call of ``Detector.score_signals``.
        device: Override the detector's device.
        plot: Draw the PNG plot.
        gap: Largest gap (s) between flagged windows merged into one event.
        threshold: Decide with this policy instead of the run's saved rule.
        channel: The audio channel to read (an index or ``"mean"``; default: the one
            the run trained on).

    Returns:
        The window scores, decisions, events and the files written.

    Raises:
        ConfigError: Bad window/hop, a window longer than the recording, or several
            machines trained and none chosen.
        DetectorError: No trained detector (for that machine).
        AudioError: The recording cannot be read.
    """
    import numpy as np

    from soundwatch.audio import DEFAULT_SR, MIN_SECONDS, info, stream
    from soundwatch.decisions import machine_decider, section_of_path
    from soundwatch.errors import DetectorError
    from soundwatch.events import merge_events, write_events
    from soundwatch.sensor import check_signal, rate_problem

    if not window > 0 or not hop > 0:
        raise ConfigError("--window/--hop", f"must be positive seconds (got {window}, {hop})")
    if window < MIN_SECONDS:  # the same minimum as a whole file (audio.load)
        raise ConfigError("--window", f"{window:g} s is shorter than the minimum clip length "
                          f"of {MIN_SECONDS:g} s")
    if batch_windows < 1:
        raise ConfigError("batch_windows", "must be at least 1")
    run = Run.open(run_dir)
    trained = run.machines()
    if machine is None:
        if len(trained) != 1:
            raise ConfigError(
                "--machine",
                f"the run has {len(trained)} machine types ({', '.join(trained)}); pick one",
            )
        machine = trained[0]
    wav = Path(wav)
    meta = info(wav)
    if window > meta.duration + 1e-9:
        raise ConfigError("--window", f"{window:g} s is longer than {wav} "
                          f"({meta.duration:.2f} s); give a shorter window")
    det = run.load_detector(machine)
    _set_runtime(det, device=device, progress=False, channel=channel)
    channel = det._context(None).channel  # the run's unless overridden
    policy = None if threshold is None else _check_policy(threshold)
    try:
        decider = machine_decider(run, machine, det, policy=policy).for_section(
            section_of_path(wav))
    except DetectorError as exc:
        log.warning("%s: no threshold, no decisions (%s)", machine, exc)
        decider = None
    sr = int(det.make_frontend().sr) if hasattr(det, "make_frontend") else DEFAULT_SR
    if out is not None:
        out_dir = Path(out)
    else:
        out_dir = _new_scoring_dir(run, wav.stem)
    name = _scoring_name(run, out_dir)
    stem = _NAME_CHARS.sub("_", wav.stem) or "recording"
    csv_path = out_dir / f"{stem}_windows.csv"
    threshold = float(decider.threshold) if decider is not None else float("nan")
    starts: list[float] = []
    ends: list[float] = []
    values: list[float] = []
    flags: list[int] = []
    pcts: list[float] = []
    statuses: list[str] = []
    reasons: list[str] = []
    wrong_rate = rate_problem(meta.samplerate, decider.sample_rates if decider is not None else ())
    if wrong_rate:
        log.warning("%s: %s: every window has a sensor status", wav, wrong_rate)

    def flush(batch: list[tuple[float, Any]], writer: Any) -> None:
        scores = np.asarray(det.score_signals([x for _, x in batch], sr), dtype=np.float64)
        dec = decider.decide(scores) if decider is not None else np.zeros(len(scores), int)
        pct = decider.percentile(scores) if decider is not None else np.full(len(scores), np.nan)
        for (start, x), value, d, p in zip(batch, scores, dec, pct, strict=True):
            end = start + len(x) / sr
            check = check_signal(x, sr)  # the stretch itself: silent, clipped, DC offset
            reason = "; ".join(r for r in (check.reason, wrong_rate) if r)
            status = "sensor" if reason else "ok"
            d = int(d) if status == "ok" else 0
            starts.append(start)
            ends.append(end)
            values.append(float(value))
            flags.append(d)
            pcts.append(float(p))
            statuses.append(status)
            reasons.append(reason)
            writer.writerow([f"{start:.6g}", f"{end:.6g}", repr(float(value)), repr(threshold),
                             d, f"{float(p):.4g}", status, reason])

    import csv

    with run.step(f"windows/{name}/{wav.name}") as facts, \
            atomic_open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["start_s", "end_s", "score", "threshold", "decision", "percentile",
                         "status", "status_reason"])
        batch: list[tuple[float, Any]] = []
        for start, samples in stream(wav, window, hop, sr=sr, channel=channel):
            batch.append((start, samples))
            if len(batch) >= batch_windows:
                flush(batch, writer)
                batch = []
        if batch:
            flush(batch, writer)
        facts["windows"] = len(values)
        facts["machine"] = machine
        facts["channel"] = channel
        facts["flagged"] = int(sum(flags))
        facts["sensor"] = statuses.count("sensor")
    events = merge_events(starts, ends, values, flags, gap=gap)
    events_csv, events_json = write_events(
        events, out_dir / f"{stem}_events.csv", out_dir / f"{stem}_events.json",
        file=str(wav.resolve()), machine=machine, window_s=window, hop_s=hop,
        threshold=None if decider is None else threshold,
        policy=None if decider is None else decider.policy, windows=len(values),
        flagged_windows=int(sum(flags)),
    )
    png_path = out_dir / f"{stem}_windows.png" if plot else None
    if png_path is not None:
        _plot_windows(png_path, starts, ends, values, title=f"{wav.name} ({machine})",
                      threshold=threshold, events=events)
    run.info.setdefault("scorings", {})[name] = {
        "kind": "windows", "data": str(wav.resolve()), "machines": [machine],
        "finished": True, "folder": str(out_dir.resolve()), "windows": len(values),
        "events": len(events),
    }
    run.save_info()
    return WindowScores(csv_path, png_path, machine, len(values), tuple(starts), tuple(ends),
                        tuple(values), threshold, tuple(flags), tuple(pcts), tuple(events),
                        events_csv, events_json, tuple(statuses), tuple(reasons))


def _plot_windows(
    path: Path, starts: Sequence[float], ends: Sequence[float], values: Sequence[float],
    title: str, threshold: float = float("nan"), events: Sequence[Any] = (),
) -> None:
    import math

    import numpy as np
    from matplotlib.figure import Figure

    mids = (np.asarray(starts) + np.asarray(ends)) / 2
    fig = Figure(figsize=(10, 3), dpi=100)  # no pyplot: no global backend state
    ax = fig.subplots()
    for i, ev in enumerate(events):
        ax.axvspan(ev.start_s, ev.end_s, color="tab:red", alpha=0.18, lw=0,
                   label="anomalous event" if i == 0 else None)
    ax.plot(mids, values, lw=1, color="tab:blue", label="window score")
    if not math.isnan(threshold):
        ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:.4g}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("anomaly score")
    ax.set_title(f"{title}: {len(events)} event(s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
