"""Per-clip decisions and percentiles from a detector's out-of-fold training scores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.errors import DetectorError

__all__ = ["Decider", "load_deciders", "machine_decider", "percentile_of"]


def percentile_of(train_scores: np.ndarray, scores: np.ndarray | Sequence[float]) -> np.ndarray:
    """Percentile (0-100) of each score among the normal training scores.

    The share of training scores at or below the score: 98 reads "higher than 98 % of
    what the machine sounded like in training". NaN scores give NaN.

    Args:
        train_scores: Out-of-fold scores of the normal training clips.
        scores: Scores to place.

    Returns:
        float64 percentiles, one per score.
    """
    ref = np.sort(np.asarray(train_scores, dtype=np.float64).reshape(-1))
    ref = ref[np.isfinite(ref)]
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if ref.size == 0:
        return np.full(x.shape, np.nan)
    out = 100.0 * np.searchsorted(ref, x, side="right") / ref.size
    return np.where(np.isfinite(x), out, np.nan)


@dataclass(frozen=True)
class Decider:
    """A machine's decision rule: ``decision = 1`` (anomaly) when ``score > threshold``.

    Attributes:
        threshold: The fitted threshold.
        train_scores: The normal training clips' (out-of-fold) scores, for percentiles.
        policy: How the threshold was chosen (``"gamma"`` by default, as the DCASE baseline).
    """

    threshold: float
    train_scores: np.ndarray
    policy: str = "gamma"

    @classmethod
    def from_training_scores(
        cls, train_scores: np.ndarray | Sequence[float], policy: str = "gamma"
    ) -> Decider:
        """Fit the threshold on training scores with a policy of ``--threshold``'s syntax.

        Args:
            train_scores: Out-of-fold scores of the normal training clips.
            policy: ``"gamma"``, ``"gamma:Q"``, ``"contamination:Q"`` or ``"fixed:V"``.

        Raises:
            EvaluationError: An unknown policy, or one that needs labels (``best-f1``).
        """
        from soundwatch.errors import EvaluationError
        from soundwatch.evaluation.thresholds import (
            GAMMA_QUANTILE,
            contamination_threshold,
            gamma_threshold,
            parse_threshold,
        )

        x = np.asarray(train_scores, dtype=np.float64).reshape(-1)
        x = x[np.isfinite(x)]
        spec = parse_threshold(policy)
        if spec.policy == "gamma":
            value, _ = gamma_threshold(x, spec.value or GAMMA_QUANTILE)
        elif spec.policy == "contamination":
            value = contamination_threshold(x, float(spec.value))  # type: ignore[arg-type]
        elif spec.policy == "fixed":
            value = float(spec.value)  # type: ignore[arg-type]
        else:
            raise EvaluationError("--threshold", f"{policy!r} needs test labels; not a rule")
        return cls(float(value), np.sort(x), str(spec))

    @classmethod
    def from_detector(cls, detector: Any) -> Decider:
        """The decider a fitted detector carries (``threshold_`` and ``train_scores_``).

        Raises:
            DetectorError: The detector has no fitted threshold (saved by an old version).
        """
        threshold = getattr(detector, "threshold_", None)
        train = getattr(detector, "train_scores_", None)
        if threshold is None or train is None:
            raise DetectorError(
                getattr(detector, "name", "detector"), "has no fitted threshold (retrain it)"
            )
        policy = str(getattr(detector, "threshold_policy_", "gamma"))
        return cls(float(threshold), np.sort(np.asarray(train, dtype=np.float64)), policy)

    def decide(self, scores: np.ndarray | Sequence[float]) -> np.ndarray:
        """0/1 per score (1 = anomalous); NaN scores give 0."""
        x = np.asarray(scores, dtype=np.float64).reshape(-1)
        return (np.nan_to_num(x, nan=-np.inf) > self.threshold).astype(np.int64)

    def percentile(self, scores: np.ndarray | Sequence[float]) -> np.ndarray:
        """Percentile of each score among the training scores (see :func:`percentile_of`)."""
        return percentile_of(self.train_scores, scores)


def machine_decider(
    run: Any, machine: str, detector: Any = None, policy: str = "gamma"
) -> Decider:
    """The :class:`Decider` of one machine type of a run.

    The detector's own threshold when it has one, else ``policy`` fitted on the
    machine's rows of the run's ``scores/train_scores.csv``.

    Args:
        run: A :class:`soundwatch.runs.Run`.
        machine: A trained machine type.
        detector: Its loaded detector (loaded here when ``None``).
        policy: Threshold policy for a detector without its own threshold.

    Raises:
        DetectorError: Neither a threshold nor training scores for the machine.
    """
    from soundwatch.scores import read_scores_table

    det = detector if detector is not None else run.load_detector(machine)
    try:
        return Decider.from_detector(det)
    except DetectorError:
        pass
    path = Path(run.train_scores_path)
    if not path.is_file():
        raise DetectorError(path, "no training scores to fit a threshold on")
    table = read_scores_table(path)
    rows = table[table["machine"] == machine]
    if rows.empty:
        raise DetectorError(path, f"no training scores for machine {machine!r}")
    return Decider.from_training_scores(rows["score"].to_numpy(), policy)


def load_deciders(run_dir: str | os.PathLike[str], policy: str = "gamma") -> dict[str, Decider]:
    """One :class:`Decider` per trained machine type of a run folder.

    Uses each saved detector's own threshold when it has one, else fits ``policy`` on the
    run's ``scores/train_scores.csv``.

    Args:
        run_dir: A run folder written by ``soundwatch train``.
        policy: Threshold policy for detectors without their own threshold.

    Returns:
        machine -> decider.
    """
    from soundwatch.runs import Run
    from soundwatch.scores import read_scores_table

    run = Run.open(run_dir)
    out: dict[str, Decider] = {}
    table = None
    for machine in run.machines():
        det = run.load_detector(machine)
        try:
            out[machine] = Decider.from_detector(det)
            continue
        except DetectorError:
            pass
        if table is None:
            path = Path(run.train_scores_path)
            if not path.is_file():
                raise DetectorError(path, "no training scores to fit a threshold on")
            table = read_scores_table(path)
        rows = table[table["machine"] == machine]
        out[machine] = Decider.from_training_scores(rows["score"].to_numpy(), policy)
    return out
