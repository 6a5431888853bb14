"""Scoring recordings with a run's detectors: one scores folder per scoring, resumable."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.atomic import remove_leftovers, write_json
from soundwatch.config import RunConfig, parse_channel
from soundwatch.datasets import ANY_LAYOUT, assign_split, collect_recordings
from soundwatch.datasets.checks import check_clips
from soundwatch.decisions import read_decider
from soundwatch.detectors.loading import load_run_detector, run_context_for
from soundwatch.errors import ConfigError, DatasetError, DetectorError
from soundwatch.explain import explain_flagged
from soundwatch.features.cache import fingerprint
from soundwatch.pipeline.common import (
    TEST_SPLIT,
    check_policy,
    discover_clips,
    group_by_machine,
    now_stamp,
    pick_machines,
)
from soundwatch.pipeline.executor import Executor, LocalExecutor, Remote
from soundwatch.run_decisions import machine_decider
from soundwatch.runs import Run
from soundwatch.scores import (
    add_decisions,
    add_status,
    make_scores_table,
    read_scores_table,
    write_dcase_scores,
    write_scores_table,
)
from soundwatch.sensor import STATUS_ERROR, SensorCheck, check_file

if TYPE_CHECKING:
    import pandas as pd

    from soundwatch.datasets.clip import Clip

log = logging.getLogger(__name__)


NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def _channel_line(channel: int | str) -> str:
    """The channel's part of a job key (none for channel 0: keys of earlier scorings hold)."""
    return "" if channel == 0 else f"channel={channel}\n"


def _part_key(run: Run, machine: str, clips: Sequence[Clip], skip_bad: bool,
              channel: int | str = 0) -> str:
    """Identity of one machine's scoring job: its detector files, clip list and options."""
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


def new_scoring_dir(run: Run, label: str) -> Path:
    """A new, unused ``scores/<label>-<timestamp>[-N]`` folder name under the run."""
    base = f"{NAME_CHARS.sub('_', label).strip('_.') or 'scores'}-{now_stamp()}"
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
    return new_scoring_dir(run, label)


def scoring_name(run: Run, out_dir: Path) -> str:
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
    split = run.info.get("split") or {}
    split_seed = split.get("seed", cfg.seed)
    train_normals = split.get("train_normals")
    if not paths:
        if cfg.data is None:
            raise ConfigError(run.config_path, "no data folder recorded; give DATA")
        clips = discover_clips(cfg.data, split_seed, train_normals=train_normals,
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
    executor: Executor | None = None,
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
        executor: Where the clips are scored (default
            :class:`~soundwatch.pipeline.executor.LocalExecutor`; with
            :class:`soundwatch.scale.RayExecutor` the clips of the machine types not yet
            scored are scored with Ray Data); the tables and files written are the same.
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


    executor = executor or LocalExecutor()
    policy = None if threshold is None else check_policy(threshold)
    run = Run.open(run_dir)
    cfg = run.config()

    channel = cfg.channel if channel is None else parse_channel(channel)
    if not executor.any_channel and channel != cfg.channel:
        raise ConfigError("--channel", f"the {executor.name} backend reads the run's channel "
                          f"({cfg.channel}); score another channel locally")
    trained = run.machines()
    wanted = list(machines) if machines else None
    chosen = pick_machines(trained, wanted, str(run.root))
    paths = _paths_of(data)
    import time

    started = time.perf_counter()
    clips, label, source = _clips_to_score(run, cfg, paths, trained, wanted)
    discover_s = time.perf_counter() - started
    tests = group_by_machine(clips)
    untrained = sorted(set(tests) - set(trained))
    if untrained:
        log.warning("%s: no trained detector for %s; their clips are left out",
                    run.root, ", ".join(untrained))
    key = _job_key([c for c in clips if c.machine in chosen], chosen, skip_bad, channel)
    out_dir = _scoring_folder(run, out, label, key)
    name = scoring_name(run, out_dir)
    scorings = run.info.setdefault("scorings", {})
    entry = scorings.setdefault(name, {})
    entry.update({"data": source, "key": key, "machines": chosen, "finished": False,
                  "folder": str(out_dir.resolve()), "channel": channel})
    entry.setdefault("started", now_stamp())
    run.record_step(f"score/{name}/discover", discover_s, clips=len(clips))
    out_dir.mkdir(parents=True, exist_ok=True)

    remove_leftovers(out_dir)  # temporary files of a killed scoring (issue 19)
    write_json(out_dir / "scoring.json", {"key": key, "data": source, "machines": chosen,
                                          "run": str(run.root.resolve()), "channel": channel})
    parts_dir = out_dir / "parts"
    context = run_context_for(run, device=device, progress=progress, channel=channel)
    tables: list[pd.DataFrame] = []
    deciders: dict[str, Any] = {}
    detectors: dict[str, Any] = {}
    part_keys = {m: _part_key(run, m, tests[m], skip_bad, channel)
                 for m in chosen if tests.get(m)}
    todo = {m: tests[m] for m, k in part_keys.items() if not _part_done(parts_dir, m, k)}
    remote: Remote = {}  # scored ahead by the executor: machine -> (good, skipped, scores)
    if executor.scores_ahead:
        with run.step(f"score/{name}/{executor.name}", clips=sum(len(c) for c in todo.values())):
            remote = executor.score_machines(run, todo, skip_bad=skip_bad, device=device,
                                             progress=progress)
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
            det = load_run_detector(run, machine)
            with run.step(f"score/{name}/{machine}", clips=len(good), skipped=len(skipped)):
                values = remote[machine][2] if machine in remote else det.score(good, context)
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

        with run.step(f"score/{name}/explain") as facts:
            written = explain_flagged(run, table, out_dir / "explain", detectors=detectors,
                                      deciders=deciders, context=context)
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
    if machine not in deciders:
        try:
            deciders[machine] = machine_decider(run, machine, det, policy=policy)
        except DetectorError as exc:
            log.warning("%s: no threshold, no decisions (%s)", machine, exc)
    return add_decisions(table, {k: v for k, v in deciders.items() if k == machine})


def _sensor_status(run: Run, machine: str, table: pd.DataFrame, cfg: Any) -> pd.DataFrame:
    """``status``/``status_reason`` of each scored clip (:func:`soundwatch.sensor.check_file`)."""
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
