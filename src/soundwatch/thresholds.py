"""Decision thresholds per machine type and section: far, gamma, best-F1, fixed, contamination."""

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
    "DEFAULT_POLICY",
    "FalseAlarm",
    "ThresholdSpec",
    "Thresholds",
    "parse_threshold",
    "gamma_threshold",
    "best_f1_threshold",
    "contamination_threshold",
    "far_threshold",
    "false_alarm",
    "fit_thresholds",
    "apply_thresholds",
]

log = logging.getLogger(__name__)

POLICIES = ("far", "gamma", "best-f1", "fixed", "contamination")
"""Threshold policy names accepted by :func:`parse_threshold`."""

DEFAULT_FAR = 0.01
"""The default target false-alarm rate on normal recordings (``far:0.01``)."""

DEFAULT_POLICY = "far:0.01"
"""The decision policy ``train``, ``score``, ``watch`` and ``serve`` use unless told."""

CONFIDENCE = 0.95
"""Coverage of the false-alarm rate interval (Clopper-Pearson)."""

GAMMA_QUANTILE = 0.9
"""The DCASE baseline's ``decision_threshold``: the gamma distribution's 90th percentile."""

MIN_TRAIN = 2
"""Fewest training scores a gamma fit needs (else the empirical quantile)."""

MIN_SECTION_TRAIN = 20
"""Fewest training clips a section needs for its own threshold; sections with fewer use
their machine type's threshold (with a warning): a threshold from a handful of clips
(DCASE valve id_04 from 2 clips gave a gamma shape of 4e8) decides nothing reliably."""


@dataclass(frozen=True)
class ThresholdSpec:
    """A parsed ``--threshold`` option.

    Attributes:
        policy: One of :data:`POLICIES`.
        value: ``far``: the target false-alarm rate on normal clips; ``fixed``: the
            threshold; ``contamination``: the expected anomalous fraction of
            the training clips; ``gamma``: the quantile (0.9 by default); ``best-f1``: None.
    """

    policy: str
    value: float | None = None

    @property
    def needs_train_scores(self) -> bool:
        """Whether the policy is fitted on the training clips' scores."""
        return self.policy in ("far", "gamma", "contamination")

    @property
    def optimistic(self) -> bool:
        """Whether the threshold was chosen on the test labels (an optimistic estimate)."""
        return self.policy == "best-f1"

    def __str__(self) -> str:
        return self.policy if self.value is None else f"{self.policy}:{self.value:g}"


def parse_threshold(text: str) -> ThresholdSpec:
    """Parse ``far[:RATE]``, ``gamma[:Q]``, ``best-f1``, ``fixed:VALUE`` or ``contamination:Q``.

    Raises:
        EvaluationError: If the text names no policy or its value is out of range.
    """
    raw = text.strip()
    name, _, arg = raw.partition(":")
    name = name.strip().lower().replace("_", "-")
    if name == "bestf1":
        name = "best-f1"
    if name not in POLICIES:
        raise EvaluationError("--threshold", f"unknown policy {raw!r}; expected far:RATE, "
                              "gamma:Q, fixed:VALUE, contamination:Q or best-f1")
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
    if name == "far":
        value = DEFAULT_FAR if value is None else value
        if not 0 < value < 1:
            raise EvaluationError("--threshold", "far needs a false-alarm rate in (0, 1), "
                                  "as in far:0.01")
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


def far_threshold(train_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold that at most ``rate`` of the normal training scores exceed.

    With ``n`` scores sorted ascending and ``k = floor(rate * n)`` exceedances allowed,
    the threshold is the ``(n - k)``-th score: a clip is flagged (``score > threshold``)
    only when it scores above all but ``k`` of the normal training clips, so a flagged
    clip's percentile is always at least ``100 * (1 - rate)``. With fewer than
    ``1 / rate`` clips no exceedance is allowed and the threshold is the highest score.

    Args:
        train_scores: Out-of-fold scores of the normal training clips.
        rate: Target false-alarm rate on normal clips, in (0, 1).

    Raises:
        EvaluationError: No training scores.
    """
    x = np.sort(np.asarray(train_scores, dtype=np.float64).reshape(-1))
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise EvaluationError("train scores", "no training scores for a far threshold")
    k = min(int(np.floor(rate * x.size + 1e-9)), x.size - 1)
    return float(x[x.size - 1 - k])


@dataclass(frozen=True)
class FalseAlarm:
    """The false-alarm rate a threshold gives on normal recordings, with its uncertainty.

    Attributes:
        exceed: Normal training clips (out of fold) scoring above the threshold.
        n: Normal training clips.
        estimate: The expected rate on new normal clips: ``(exceed + 1) / (n + 1)`` for a
            threshold fitted on these scores (the exact expectation for an order-statistic
            threshold of exchangeable scores), ``exceed / n`` for a fixed one.
        low: Lower end of the Clopper-Pearson interval (:data:`CONFIDENCE`).
        high: Upper end.
        target: The rate asked for (``far`` policy), or None.
    """

    exceed: int
    n: int
    estimate: float
    low: float
    high: float
    target: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"exceed": self.exceed, "n": self.n, "estimate": self.estimate,
                "low": self.low, "high": self.high, "confidence": CONFIDENCE,
                "target": self.target, "method": "clopper-pearson"}

    def describe(self) -> str:
        """One line: ``estimated false alarms 1.1 % (95 % interval 0.3-36.9 %, 0 of 8 ...)``."""
        return (f"estimated false-alarm rate {100 * self.estimate:.3g} % of normal clips "
                f"({100 * CONFIDENCE:.0f} % interval {100 * self.low:.3g}-{100 * self.high:.3g} "
                f"%; {self.exceed} of {self.n} normal training clips above the threshold)")

    @property
    def too_few(self) -> bool:
        """Whether the interval's upper end is over twice the target (too few clips)."""
        return self.target is not None and self.high > 2 * self.target


def false_alarm(train_scores: np.ndarray, threshold: float, fitted: bool = True,
                target: float | None = None) -> FalseAlarm:
    """Estimate the false-alarm rate of ``score > threshold`` on normal recordings.

    Counts the out-of-fold normal training scores above the threshold (``k`` of ``n``)
    and gives the exact (Clopper-Pearson) interval of a binomial rate,
    ``[beta.ppf(a/2, k, n-k+1), beta.ppf(1-a/2, k+1, n-k)]`` with ``a = 1 - CONFIDENCE``
    (``scipy.stats.beta``). For a threshold fitted on these scores it also covers the
    exceedance probability of the order statistics around the threshold, which follow
    ``Beta(k+1, n-k)`` whatever the score distribution.

    Args:
        train_scores: Out-of-fold scores of the normal training clips.
        threshold: The decision threshold.
        fitted: Whether the threshold was chosen on these scores.
        target: The rate asked for, if any.
    """
    import scipy.stats

    x = np.asarray(train_scores, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return FalseAlarm(0, 0, float("nan"), 0.0, 1.0, target)
    k = int(np.sum(x > threshold))
    alpha = 1.0 - CONFIDENCE
    low = 0.0 if k == 0 else float(scipy.stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(scipy.stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    estimate = (k + 1) / (n + 1) if fitted else k / n
    return FalseAlarm(k, n, float(estimate), low, high, target)


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
    :data:`MIN_SECTION_TRAIN`); ``best-f1`` uses the labelled rows of ``scores`` of the section
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
            if part.size < MIN_SECTION_TRAIN:
                part = train_scores.loc[same_machine, "score"].to_numpy()
                scope = "machine"
            if part.size == 0:
                raise EvaluationError("train scores", f"no training scores for machine {machine}")
            if spec.policy == "gamma":
                thr, params = gamma_threshold(part, spec.value)
                out.details[key] = {"fitted_on": scope, "n_train": int(part.size), **params}
            elif spec.policy == "far":
                thr = far_threshold(part, spec.value)
                out.details[key] = {"fitted_on": scope, "n_train": int(part.size)}
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
