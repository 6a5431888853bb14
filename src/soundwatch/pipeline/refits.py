"""Refitting a run's detectors on new data or parameters, without a new run folder."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.decisions import read_decider, save_decider
from soundwatch.detectors.loading import load_run_detector
from soundwatch.errors import ConfigError, DatasetError
from soundwatch.pipeline.common import (
    TRAIN_SPLIT,
    cache_folder,
    check_policy,
    discover_clips,
    group_by_machine,
    merge_table,
    pick_machines,
    run_context,
)
from soundwatch.pipeline.machines import fit_decider, machine_self_check
from soundwatch.run_decisions import record_decider
from soundwatch.runs import Run, added_normals
from soundwatch.scores import add_decisions, make_scores_table, write_scores_table

if TYPE_CHECKING:
    from soundwatch.datasets.clip import Clip

log = logging.getLogger(__name__)


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
    source = Run.open(run_dir)
    cfg = source.config()
    root = data if data is not None else cfg.data
    if root is None:
        raise ConfigError(source.config_path, "no data folder recorded; give --data")
    new_cfg = cfg.override(params=dict(params), data=str(Path(root).resolve()))
    chosen = pick_machines(source.machines(), machines, str(source.root))
    by_machine = training_normals(source, root)
    run = Run.create(new_cfg, out)
    run.info["refit_of"] = str(Path(run_dir).resolve())
    context = run_context(new_cfg, cache_dir=cache_folder(cache_dir, no_cache),
                          progress=progress)
    for machine in chosen:
        mclips = by_machine.get(machine)
        if not mclips:
            raise DatasetError(f"{root} [{machine}]", "no normal training clips to refit on")
        det = load_run_detector(source, machine)
        with run.step(f"refit/{machine}", clips=len(mclips)):
            det.refit_scorer(mclips, context, **params)
        table = make_scores_table(mclips, det.training_scores())
        old = read_decider(source.root, machine)
        decider = fit_decider(table, old.policy if old is not None else check_policy(None),
                              mclips)
        det.threshold_ = decider.threshold
        save_decider(run.root, machine, decider)
        record_decider(run, machine, decider, reason="refit", previous=old)
        table = add_decisions(table, {machine: decider})
        write_scores_table(merge_table(run.train_scores_path, machine, table),
                           run.train_scores_path)
        det.save(run.detector_dir(machine))
        log_src = source.train_log_path(machine)
        if log_src.is_file():
            run.train_log_path(machine).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_src, run.train_log_path(machine))
        check = machine_self_check(det, mclips, machine, context.channel)
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
    clips = discover_clips(root, int(split.get("seed", cfg.seed)),
                           train_normals=split.get("train_normals"), machines=cfg.machines)
    found = group_by_machine(c for c in clips if c.split == TRAIN_SPLIT and c.label in (None, 0))
    for machine in run.machines():  # recordings added as normal since (add-normal)
        found.setdefault(machine, []).extend(added_normals(run, machine))
    return {m: c for m, c in found.items() if c}
