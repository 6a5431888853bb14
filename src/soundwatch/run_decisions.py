"""The decision rules of a run folder: read, fall back for old runs, refit, record.

Above :mod:`soundwatch.decisions` (the numpy-only rule the runtime uses) and the detectors:
a run trained before rules were saved falls back to its detector's own threshold.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.decisions import DEFAULT_POLICY, Decider, read_decider, save_decider
from soundwatch.detectors.loading import load_run_detector
from soundwatch.errors import DetectorError
from soundwatch.runs import Run
from soundwatch.scores import add_decisions, read_scores_table, write_scores_table

__all__ = ["load_deciders", "machine_decider", "record_decider", "refit_threshold"]


def _train_rows(run: Any, machine: str) -> tuple[np.ndarray, list[Any] | None]:
    """A machine type's training scores and sections from ``scores/train_scores.csv``."""
    path = Path(run.train_scores_path)
    if not path.is_file():
        raise DetectorError(path, "no training scores to fit a threshold on")
    table = read_scores_table(path)
    rows = table[table["machine"] == machine]
    if rows.empty:
        raise DetectorError(path, f"no training scores for machine {machine!r}")
    return rows["score"].to_numpy(), (rows["section"].tolist() if "section" in rows else None)


def machine_decider(
    run: Any, machine: str, detector: Any = None, policy: str | None = None
) -> Decider:
    """The :class:`Decider` of one machine type of a run.

    The rule saved at training (``decisions/<machine>.json``); with ``policy``, the same
    training scores refitted with that policy (``score --threshold``). Runs trained
    before rules were saved: the detector's own threshold, else ``policy`` (default
    :data:`DEFAULT_POLICY`) fitted on ``scores/train_scores.csv``.

    Args:
        run: A :class:`soundwatch.runs.Run`.
        machine: A trained machine type.
        detector: Its loaded detector (loaded here only when needed).
        policy: Another policy than the saved one, for this use only.

    Raises:
        DetectorError: Neither a rule, a threshold nor training scores for the machine.
    """
    saved = read_decider(run.root, machine)
    if saved is not None:
        return saved if policy is None or policy == saved.policy else saved.with_policy(policy)
    if policy is None:
        det = detector if detector is not None else load_run_detector(run, machine)
        try:
            return Decider.from_detector(det)
        except DetectorError:
            pass
    scores, sections = _train_rows(run, machine)
    return Decider.from_training_scores(scores, policy or DEFAULT_POLICY, sections)


def load_deciders(run_dir: str | os.PathLike[str], policy: str | None = None
                  ) -> dict[str, Decider]:
    """One :class:`Decider` per trained machine type of a run folder.

    Args:
        run_dir: A run folder written by ``soundwatch train``.
        policy: Another policy than the saved one (refitted on the same training scores).

    Returns:
        machine -> decider.
    """
    run = Run.open(run_dir)
    return {m: machine_decider(run, m, policy=policy) for m in run.machines()}


def refit_threshold(
    run_dir: str | os.PathLike[str] | Any,
    machine: str,
    policy: str | None = None,
    train_table: Any = None,
    reason: str = "threshold",
) -> Decider:
    """Refit and save a machine type's decision rule, without retraining anything.

    What ``soundwatch threshold RUN --far 0.005`` runs, and what adding normal
    recordings calls after the scorer was refitted. The new rule replaces
    ``decisions/<machine>.json``, the machine's rows of ``scores/train_scores.csv`` get
    the new threshold, decision and percentile, and ``run.json`` records the change
    (``decisions`` holds the current rule's summary, ``threshold_changes`` every change).
    Scorings made earlier keep the decisions they were made with.

    Args:
        run_dir: A run folder (or an open :class:`soundwatch.runs.Run`).
        machine: A trained machine type.
        policy: The new policy (default: keep the current one, e.g. after new normals).
        train_table: The machine's training scores table (``score`` and ``section``
            columns; default: its rows of ``scores/train_scores.csv``).
        reason: What the change is for, recorded in ``run.json``.

    Returns:
        The new rule.

    Raises:
        ConfigError: The run folder is missing or another command holds its lock.
        DetectorError: No such machine type or no training scores.
        EvaluationError: A bad policy.
    """
    run = run_dir if isinstance(run_dir, Run) else Run.open(run_dir)
    if machine not in run.machines():
        raise DetectorError(machine, f"no trained detector in {run.root} (trained: "
                            f"{', '.join(run.machines()) or 'none'})")
    old = read_decider(run.root, machine)
    if old is None:
        try:
            old = machine_decider(run, machine)
        except DetectorError:
            old = None
    chosen = policy or (old.policy if old is not None else DEFAULT_POLICY)
    if train_table is not None:
        scores = train_table["score"].to_numpy(dtype=np.float64)
        sections = train_table["section"].tolist() if "section" in train_table else None
    else:
        scores, sections = _train_rows(run, machine)
    rates = old.sample_rates if old is not None else ()
    new = Decider.from_training_scores(scores, chosen, sections, rates)
    run.lock()
    save_decider(run.root, machine, new)
    path = Path(run.train_scores_path)
    if path.is_file():
        table = read_scores_table(path)
        mine = table["machine"] == machine
        if mine.any():
            import pandas as pd

            redone = add_decisions(table[mine], {machine: new})
            table = pd.concat([table[~mine], redone], ignore_index=True)
            write_scores_table(table, path)
    record_decider(run, machine, new, reason=reason, previous=old)
    return new


def record_decider(run: Any, machine: str, decider: Decider, reason: str = "train",
                   previous: Decider | None = None) -> None:
    """Record a machine type's rule in ``run.json`` (``decisions`` and ``threshold_changes``)."""
    import datetime as _dt

    summary = decider.summary()
    run.info.setdefault("decisions", {})[machine] = summary
    change = {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
              "machine": machine, "reason": reason, "policy": decider.policy,
              "threshold": float(decider.threshold),
              "false_alarm": summary["false_alarm"]}
    if previous is not None:
        change["previous"] = {"policy": previous.policy, "threshold": float(previous.threshold)}
    run.info.setdefault("threshold_changes", []).append(change)
    run.save_info()
