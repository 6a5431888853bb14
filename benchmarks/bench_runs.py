"""Train and score through the library pipeline (the CLI's functions), for every benchmark."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class RunResult:
    """What one ``train`` + ``score`` of a detector on a data folder gave.

    Attributes:
        test: The test scores table (``scores.csv``) without the run's decision columns.
        train: The training clips' out-of-fold scores table (``train_scores.csv``).
        fit_s: Seconds in ``train`` (all machine types, features included).
        score_s: Seconds in ``score``.
        epochs: Epochs run (networks; summed over machine types), else ``None``.
        epoch_s: Median seconds per epoch (first epoch left out), else ``None``.
        run: The run folder.
    """

    test: Any
    train: Any
    fit_s: float
    score_s: float
    epochs: int | None
    epoch_s: float | None
    run: Path


def config_epochs(detector: str, config: str | None) -> int | None:
    """The epochs a detector (with a shipped config) trains for (``None``: no training)."""
    from soundwatch.pipeline import make_detector, resolve_config

    det = make_detector(resolve_config(None, detector, config))
    if getattr(det, "encoder", None) is None or getattr(det, "objective", None) is None:
        return None
    return int(det.train_spec().epochs)


def train_and_score(data: Path, detector: str, out: Path, *, config: str | None = None,
                    params: dict[str, Any] | None = None, seed: int = 0,
                    machines: list[str] | None = None, cache_dir: Path | None = None
                    ) -> RunResult:
    """``soundwatch train`` then ``soundwatch score`` (library calls), on the CPU.

    Args:
        data: Dataset root.
        detector: Registered detector name.
        out: Run folder (must not exist).
        config: Shipped config (``soundwatch/configs``) to start from; ``None``: the
            detector preset's values.
        params: Overrides (e.g. ``{"epochs": 6}``).
        seed: Seed.
        machines: Machine types (default: all).
        cache_dir: Feature cache folder (``None``: no cache).
    """
    from soundwatch.pipeline import score, train
    from soundwatch.scores import read_scores_table
    from soundwatch.training.context import RunContext

    t0 = time.perf_counter()
    context = RunContext(cache_dir=None if cache_dir is None else str(cache_dir))
    run = train(data, detector, config, machines=machines, out=out, params=params or {},
                seed=seed, device="cpu", context=context)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test = score(run.root, data)
    score_s = time.perf_counter() - t0
    # the benchmarks compare threshold policies themselves: without the scoring's decision
    # columns, evaluate_scores(threshold=...) decides with the policy each table names
    test = test.drop(columns=["threshold", "decision", "percentile"], errors="ignore")
    train_table = read_scores_table(run.train_scores_path)
    times, epochs = [], 0
    for log in sorted(run.train_log_dir.glob("*.csv")) if run.train_log_dir.is_dir() else []:
        with open(log, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        epochs += len(rows)
        times += [float(r["time_s"]) for r in rows[1:] if r.get("time_s")]
    return RunResult(test, train_table, fit_s, score_s, epochs or None,
                     float(np.median(times)) if times else None, run.root)
