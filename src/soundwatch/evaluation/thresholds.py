"""Decision thresholds per machine type and section: gamma, best-F1, fixed, contamination."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.errors import EvaluationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "POLICIES",
    "ThresholdSpec",
    "Thresholds",
    "parse_threshold",
    "gamma_threshold",
    "best_f1_threshold",
    "contamination_threshold",
    "fit_thresholds",
    "apply_thresholds",
]

log = logging.getLogger(__name__)

POLICIES = ("gamma", "best-f1", "fixed", "contamination")
"""Threshold policy names accepted by :func:`parse_threshold`."""

GAMMA_QUANTILE = 0.9
"""The DCASE baseline's ``decision_threshold``: the gamma distribution's 90th percentile."""

MIN_TRAIN = 2
"""Fewest training scores a section needs for its own gamma/contamination threshold."""


@dataclass(frozen=True)
class ThresholdSpec:
    """A parsed ``--threshold`` option.

    Attributes:
        policy: One of :data:`POLICIES`.
        value: ``fixed``: the threshold; ``contamination``: the expected anomalous fraction of
            the training clips; ``gamma``: the quantile (0.9 by default); ``best-f1``: None.
    """

    policy: str
    value: float | None = None

    @property
    def needs_train_scores(self) -> bool:
        """Whether the policy is fitted on the training clips' scores."""
        return self.policy in ("gamma", "contamination")

    @property
    def optimistic(self) -> bool:
        """Whether the threshold was chosen on the test labels (an optimistic estimate)."""
        return self.policy == "best-f1"

    def __str__(self) -> str:
        return self.policy if self.value is None else f"{self.policy}:{self.value:g}"


def parse_threshold(text: str) -> ThresholdSpec:
    """Parse ``gamma[:Q]``, ``best-f1``, ``fixed:VALUE`` or ``contamination:Q``.

    Raises:
        EvaluationError: If the text names no policy or its value is out of range.
    """
    raw = text.strip()
    name, _, arg = raw.partition(":")
    name = name.strip().lower().replace("_", "-")
    if name == "bestf1":
        name = "best-f1"
    if name not in POLICIES:
        raise EvaluationError("--threshold", f"unknown policy {raw!r}; expected gamma, best-f1, "
                              "fixed:VALUE or contamination:Q")
    value: float | None = None
    if arg.strip():
        try:
            value = float(arg)
        except ValueError as exc:
            raise EvaluationError("--threshold", f"{arg!r} is not a number") from exc
        if not np.isfinite(value):
            raise EvaluationError("--threshold", f"{arg!r} is not a finite number")
    if name == "best-f1" and value is not None:
        raise EvaluationError("--threshold", "best-f1 takes no value")
    if name == "fixed" and value is None:
        raise EvaluationError("--threshold", "fixed needs a value, as in fixed:0.5")
    if name == "contamination":
        if value is None or not 0 < value < 1:
            raise EvaluationError("--threshold", "contamination needs a fraction in (0, 1), "
                                  "as in contamination:0.1")
    if name == "gamma":
        value = GAMMA_QUANTILE if value is None else value
        if not 0 < value < 1:
            raise EvaluationError("--threshold", "gamma quantile must be in (0, 1)")
    return ThresholdSpec(name, value)


def gamma_threshold(train_scores: np.ndarray, quantile: float = GAMMA_QUANTILE
                    ) -> tuple[float, dict[str, float]]:
    """The DCASE baseline threshold: a gamma distribution's quantile of the training scores.

    As the DCASE 2020-2024 baselines do: ``a, loc, scale = scipy.stats.gamma.fit(scores)``
    (shape, location and scale all fitted by maximum likelihood) and the threshold is
    ``scipy.stats.gamma.ppf(quantile, a, loc=loc, scale=scale)``. When the fit is impossible
    (fewer than 2 scores, constant scores) or not finite, the empirical quantile is used
    with a logged warning.

    Args:
        train_scores: Scores of the (normal) training clips.
        quantile: The quantile, 0.9 in the baselines.

    Returns:
        ``(threshold, params)`` with ``params`` = ``{"a", "loc", "scale"}`` (empty on fallback).
    """
    import scipy.stats

    x = np.asarray(train_scores, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise EvaluationError("train scores", "no training scores to fit a gamma distribution")
    if x.size < MIN_TRAIN or np.ptp(x) == 0:
        log.warning("gamma fit impossible on %d score(s) (constant or too few); "
                    "using the empirical %.2f quantile", x.size, quantile)
        return float(np.quantile(x, quantile)), {}
    try:
        with np.errstate(all="ignore"):
            a, loc, scale = scipy.stats.gamma.fit(x)
            thr = float(scipy.stats.gamma.ppf(quantile, a, loc=loc, scale=scale))
    except (RuntimeError, ValueError, FloatingPointError) as exc:  # pragma: no cover - scipy
        log.warning("gamma fit failed (%s); using the empirical %.2f quantile", exc, quantile)
        return float(np.quantile(x, quantile)), {}
    if not np.isfinite(thr):
        log.warning("gamma fit gave a non-finite threshold; using the empirical %.2f quantile",
                    quantile)
        return float(np.quantile(x, quantile)), {}
    return thr, {"a": float(a), "loc": float(loc), "scale": float(scale)}


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The threshold that maximises F1 on labelled scores (decision: ``score > threshold``).

    Every distinct cut is tried: the midpoints between consecutive distinct scores, and just
    below the lowest score (everything anomalous). Ties keep the lowest threshold. This uses
    the test labels, so the resulting F1 is optimistic.

    Args:
        y_true: 0/1 labels (1 = anomaly).
        scores: Scores.

    Returns:
        ``(threshold, best_f1)``.
    """
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise EvaluationError("scores", "no labelled scores to choose a best-F1 threshold")
    uniq = np.unique(s)
    cuts = np.r_[np.nextafter(uniq[0], -np.inf), (uniq[:-1] + uniq[1:]) / 2.0]
    # clips above cut k are those with score >= uniq[k] (k = 0 .. n-1)
    order = np.searchsorted(uniq, s)
    pos_at = np.bincount(order, weights=y, minlength=uniq.size)
    all_at = np.bincount(order, minlength=uniq.size).astype(np.float64)
    tp = np.cumsum(pos_at[::-1])[::-1]
    predicted = np.cumsum(all_at[::-1])[::-1]
    n_pos = y.sum()
    f1 = np.where(predicted + n_pos > 0, 2 * tp / np.maximum(predicted + n_pos, 1e-300), 0.0)
    best = int(np.argmax(f1))
    return float(cuts[best]), float(f1[best])


def contamination_threshold(train_scores: np.ndarray, contamination: float) -> float:
    """The training scores' ``1 - contamination`` quantile (linear interpolation).

    With ``contamination = 0.1`` about 10 % of the training clips score above it.
    """
    x = np.asarray(train_scores, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise EvaluationError("train scores", "no training scores for a contamination threshold")
    return float(np.quantile(x, 1.0 - contamination))


@dataclass
class Thresholds:
    """Fitted thresholds, one per machine type and section.

    Attributes:
        spec: The policy.
        values: ``(machine, section)`` -> threshold (section ``""`` when the table has none).
        details: ``(machine, section)`` -> what the fit used (gamma parameters, clip counts,
            fall-backs).
    """

    spec: ThresholdSpec
    values: dict[tuple[str, str], float] = field(default_factory=dict)
    details: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: policy and ``"<machine>/<section>"`` -> value and details."""
        return {
            "policy": str(self.spec),
            "optimistic": self.spec.optimistic,
            "rule": "decision = 1 (anomaly) when score > threshold",
            "values": {f"{m}/{s}": v for (m, s), v in self.values.items()},
            "details": {f"{m}/{s}": d for (m, s), d in self.details.items()},
        }


def _section_key(df: pd.DataFrame) -> pd.Series:
    return df["section"].where(df["section"].notna(), "").astype(str)


def fit_thresholds(
    spec: ThresholdSpec | str,
    scores: pd.DataFrame,
    train_scores: pd.DataFrame | None = None,
) -> Thresholds:
    """Fit a threshold for each machine type and section of a scores table.

    ``gamma`` and ``contamination`` use the training scores of the same machine type and
    section (all the machine type's training scores when that section has fewer than
    :data:`MIN_TRAIN`); ``best-f1`` uses the labelled rows of ``scores`` of the section
    (the machine type's when the section lacks a class; all-normal decisions when the
    machine type lacks one too); ``fixed`` gives every section the same value.

    Args:
        spec: A :class:`ThresholdSpec` or its text form.
        scores: The test scores table.
        train_scores: The training clips' scores table (``gamma``, ``contamination``).

    Returns:
        The thresholds.

    Raises:
        EvaluationError: If training scores are needed and absent, or a machine type has none.
    """
    if isinstance(spec, str):
        spec = parse_threshold(spec)
    out = Thresholds(spec)
    sections = _section_key(scores)
    keys = sorted(set(zip(scores["machine"].astype(str), sections, strict=True)))
    if spec.needs_train_scores:
        if train_scores is None or train_scores.empty:
            raise EvaluationError("train scores", f"the {spec.policy} threshold needs the "
                                  "training clips' scores")
        train_sec = _section_key(train_scores)
    for machine, section in keys:
        key = (machine, section)
        if spec.policy == "fixed":
            assert spec.value is not None
            out.values[key] = spec.value
            out.details[key] = {}
        elif spec.needs_train_scores:
            assert train_scores is not None and spec.value is not None
            same_machine = train_scores["machine"].astype(str) == machine
            part = train_scores.loc[same_machine & (train_sec == section), "score"].to_numpy()
            scope = "section"
            if part.size < MIN_TRAIN:
                part = train_scores.loc[same_machine, "score"].to_numpy()
                scope = "machine"
            if part.size == 0:
                raise EvaluationError("train scores", f"no training scores for machine {machine}")
            if spec.policy == "gamma":
                thr, params = gamma_threshold(part, spec.value)
                out.details[key] = {"fitted_on": scope, "n_train": int(part.size), **params}
            else:
                thr = contamination_threshold(part, spec.value)
                out.details[key] = {"fitted_on": scope, "n_train": int(part.size)}
            out.values[key] = thr
        else:  # best-f1
            labelled = scores["label"].notna()
            same_machine = scores["machine"].astype(str) == machine
            part = scores[labelled & same_machine & (sections == section)]
            scope = "section"
            if part["label"].nunique() < 2:
                part = scores[labelled & same_machine]
                scope = "machine"
            if part["label"].nunique() < 2:
                machine_scores = scores.loc[same_machine, "score"].to_numpy()
                log.warning("best-f1: machine %s has no labelled clips of both classes; "
                            "deciding 'normal' for all its clips", machine)
                out.values[key] = float(np.max(machine_scores))
                out.details[key] = {"fitted_on": "none"}
                continue
            thr, f1 = best_f1_threshold(part["label"].to_numpy(), part["score"].to_numpy())
            out.values[key] = thr
            out.details[key] = {"fitted_on": scope, "n_labelled": len(part), "best_f1": f1}
    return out


def apply_thresholds(scores: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """A copy of the table with ``threshold`` and ``decision`` (1 where score > threshold)."""
    out = scores.copy()
    sections = _section_key(out)
    thr = np.array([thresholds.values[(str(m), s)]
                    for m, s in zip(out["machine"], sections, strict=True)], dtype=np.float64)
    out["threshold"] = thr
    out["decision"] = (out["score"].to_numpy(dtype=np.float64) > thr).astype(np.int64)
    return out
