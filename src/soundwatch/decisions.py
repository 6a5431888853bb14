"""Per-clip decisions and percentiles: one rule per machine type (and section), fixed at training.

The rule is fitted once, at training, on the out-of-fold scores of the normal training
clips with a policy of ``--threshold``'s syntax (``far:0.01`` by default), and saved in
the run as ``decisions/<machine>.json``. ``score``, the scores CSVs, ``evaluate``, the
report, ``watch``, ``serve``, the export and :mod:`soundwatch.runtime` all read that one
rule, so they flag the same clips. The rules of a run folder (read, refit by ``soundwatch
threshold``, recorded) are :mod:`soundwatch.run_decisions`. This module needs numpy only
(scipy and pandas are imported inside the functions that fit rules or read tables), so the
runtime can use it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundwatch.atomic import write_json
from soundwatch.datasets import names
from soundwatch.errors import DetectorError, EvaluationError
from soundwatch.thresholds import (
    DEFAULT_POLICY,
    GAMMA_QUANTILE,
    contamination_threshold,
    false_alarm,
    far_threshold,
    gamma_threshold,
    parse_threshold,
)
from soundwatch.thresholds import MIN_SECTION_TRAIN as MIN_TRAIN

__all__ = [
    "DEFAULT_POLICY",
    "DECISIONS_DIR",
    "Decider",
    "decision_path",
    "percentile_of",
    "read_decider",
    "save_decider",
    "section_of_path",
]

log = logging.getLogger(__name__)

DECISIONS_DIR = "decisions"
"""Folder of a run holding one ``<machine>.json`` decision rule per machine type."""

FORMAT = 1
"""Version of the ``decisions/<machine>.json`` format."""


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


def _section_key(value: Any) -> str:
    """A section label as a dict key: ``""`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _fit_value(scores: np.ndarray, policy: str) -> tuple[float, str, bool, float | None]:
    """``(threshold, normalised policy, fitted on the scores?, target rate)`` of a policy."""
    spec = parse_threshold(policy)
    if spec.policy == "far":
        return far_threshold(scores, float(spec.value)), str(spec), True, float(spec.value)
    if spec.policy == "gamma":
        value, _ = gamma_threshold(scores, spec.value or GAMMA_QUANTILE)
        return float(value), str(spec), True, None
    if spec.policy == "contamination":
        value = contamination_threshold(scores, float(spec.value))  # type: ignore[arg-type]
        return float(value), str(spec), True, float(spec.value)  # type: ignore[arg-type]
    if spec.policy == "fixed":
        return float(spec.value), str(spec), False, None  # type: ignore[arg-type]
    raise EvaluationError("--threshold", f"{policy!r} needs test labels; not a decision rule "
                          "(evaluate can suggest it)")


@dataclass(frozen=True, eq=False)
class Decider:
    """A machine type's decision rule: ``decision = 1`` (anomaly) when ``score > threshold``.

    Attributes:
        threshold: The machine type's threshold.
        train_scores: The normal training clips' (out-of-fold) scores, for percentiles.
        policy: How the threshold was chosen (``far:0.01``, ``gamma:0.9``, ``fixed:V``...).
        sections: Section -> its own rule (fitted on that section's training clips), for
            sections with at least :data:`soundwatch.thresholds.MIN_SECTION_TRAIN`
            training clips; other sections use this (the machine type's) rule.
        fallback: Sections with too few training clips for their own threshold.
        fitted: Whether the threshold was chosen on ``train_scores`` (not ``fixed``).
        target: The false-alarm rate asked for (``far``, ``contamination``), or None.
        train_sections: Section of each training score (aligned with ``train_scores``),
            kept so that :func:`refit_threshold` can fit another policy per section.
        sample_rates: Sample rates of the training recordings (the sensor check's
            expected rates; empty when unknown).
    """

    threshold: float
    train_scores: np.ndarray
    policy: str = DEFAULT_POLICY
    sections: Mapping[str, Decider] = field(default_factory=dict)
    fallback: tuple[str, ...] = ()
    fitted: bool = True
    target: float | None = None
    train_sections: tuple[str, ...] | None = None
    sample_rates: tuple[int, ...] = ()

    # ------------------------------------------------------------------ fitting
    @classmethod
    def from_training_scores(
        cls,
        train_scores: np.ndarray | Sequence[float],
        policy: str = DEFAULT_POLICY,
        sections: Sequence[Any] | None = None,
        sample_rates: Sequence[int] = (),
    ) -> Decider:
        """Fit the rule on training scores with a policy of ``--threshold``'s syntax.

        With ``sections`` (one label per score) and at least two distinct sections, each
        section with :data:`~soundwatch.thresholds.MIN_SECTION_TRAIN` or more clips gets
        its own threshold; the others fall back to the machine type's, with a warning.

        Args:
            train_scores: Out-of-fold scores of the normal training clips.
            policy: ``"far:RATE"``, ``"gamma:Q"``, ``"contamination:Q"`` or ``"fixed:V"``.
            sections: The section of each training clip (None: no sections).
            sample_rates: Sample rates of the training recordings.

        Raises:
            EvaluationError: An unknown policy, one that needs labels (``best-f1``), or no
                finite training score (unless ``fixed``).
        """
        x = np.asarray(train_scores, dtype=np.float64).reshape(-1)
        keys = None if sections is None else np.array([_section_key(s) for s in sections])
        if keys is not None and keys.size != x.size:
            raise ValueError(f"{keys.size} sections for {x.size} training scores")
        finite = np.isfinite(x)
        x, keys = x[finite], (None if keys is None else keys[finite])
        value, name, fitted, target = _fit_value(x, policy)
        own: dict[str, Decider] = {}
        fallback: list[str] = []
        distinct = sorted(set(keys.tolist()) - {""}) if keys is not None else []
        if len(distinct) >= 2 and keys is not None:
            for section in distinct:
                part = x[keys == section]
                if part.size < MIN_TRAIN and fitted:
                    fallback.append(section)
                    continue
                v, _, f, t = _fit_value(part, policy)
                own[section] = cls(v, np.sort(part), name, fitted=f, target=t,
                                   sample_rates=tuple(sample_rates))
            if fallback:
                log.warning("sections %s have fewer than %d training clips: they use the "
                            "machine type's threshold", ", ".join(fallback), MIN_TRAIN)
        return cls(float(value), np.sort(x), name, own, tuple(fallback), fitted, target,
                   None if keys is None else tuple(keys[np.argsort(x, kind="stable")]),
                   tuple(int(r) for r in sample_rates))

    @classmethod
    def from_detector(cls, detector: Any) -> Decider:
        """The rule a fitted detector carries (``threshold_`` and ``train_scores_``).

        Runs trained before decision rules were saved use this; their policy is the one
        the detector recorded (``gamma:0.9`` for those versions).

        Raises:
            DetectorError: The detector has no fitted threshold (saved by an old version).
        """
        threshold = getattr(detector, "threshold_", None)
        train = getattr(detector, "train_scores_", None)
        if threshold is None or train is None:
            raise DetectorError(
                getattr(detector, "name", "detector"), "has no fitted threshold (retrain it)"
            )
        # every detector fits its threshold_ with the default policy (composed, ensemble)
        return cls(float(threshold), np.sort(np.asarray(train, dtype=np.float64)),
                   DEFAULT_POLICY)

    def with_policy(self, policy: str) -> Decider:
        """The same training scores (and sections) fitted with another policy."""
        sections = None
        if self.train_sections is not None and len(self.train_sections) == self.train_scores.size:
            sections = list(self.train_sections)
        return Decider.from_training_scores(self.train_scores, policy, sections,
                                            self.sample_rates)

    # ------------------------------------------------------------------ deciding
    def for_section(self, section: Any) -> Decider:
        """The rule of one section (the machine type's when it has none of its own)."""
        if not self.sections:
            return self
        return self.sections.get(_section_key(section), self)

    def _split(self, n: int, sections: Sequence[Any] | None) -> list[tuple[Decider, np.ndarray]]:
        if sections is None or not self.sections:
            return [(self, np.ones(n, dtype=bool))]
        keys = np.array([_section_key(s) for s in sections])
        if keys.size != n:
            raise ValueError(f"{keys.size} sections for {n} scores")
        out = []
        own = np.zeros(n, dtype=bool)
        for name, rule in self.sections.items():
            rows = keys == name
            if rows.any():
                out.append((rule, rows))
                own |= rows
        out.append((self, ~own))
        return out

    def decide(self, scores: np.ndarray | Sequence[float],
               sections: Sequence[Any] | None = None) -> np.ndarray:
        """0/1 per score (1 = anomalous); NaN scores give 0.

        Args:
            scores: Scores.
            sections: The section of each score (its section's rule applies), or None.
        """
        x = np.asarray(scores, dtype=np.float64).reshape(-1)
        out = np.zeros(x.size, dtype=np.int64)
        for rule, rows in self._split(x.size, sections):
            out[rows] = (np.nan_to_num(x[rows], nan=-np.inf) > rule.threshold)
        return out

    def percentile(self, scores: np.ndarray | Sequence[float],
                   sections: Sequence[Any] | None = None) -> np.ndarray:
        """Percentile of each score among the training scores of the rule that decides it."""
        x = np.asarray(scores, dtype=np.float64).reshape(-1)
        out = np.full(x.size, np.nan)
        for rule, rows in self._split(x.size, sections):
            out[rows] = percentile_of(rule.train_scores, x[rows])
        return out

    def thresholds(self, n: int, sections: Sequence[Any] | None = None) -> np.ndarray:
        """The threshold that applies to each of ``n`` scores."""
        out = np.full(n, np.nan)
        for rule, rows in self._split(n, sections):
            out[rows] = rule.threshold
        return out

    # ------------------------------------------------------------------ stating the cost
    @property
    def false_alarm(self) -> Any:
        """The estimated false-alarm rate on normal recordings (a ``FalseAlarm``; scipy)."""
        return false_alarm(self.train_scores, self.threshold, self.fitted, self.target)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts without the training scores: policy, threshold, false alarms."""
        out: dict[str, Any] = {
            "policy": self.policy, "threshold": float(self.threshold),
            "rule": "anomaly when score > threshold",
            "n_train": int(self.train_scores.size),
            "false_alarm": self.false_alarm.as_dict(),
        }
        if self.sections or self.fallback:
            out["sections"] = {k: {"threshold": float(v.threshold),
                                   "n_train": int(v.train_scores.size),
                                   "false_alarm": v.false_alarm.as_dict()}
                               for k, v in sorted(self.sections.items())}
            out["fallback_sections"] = list(self.fallback)
        return out

    def as_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the rule (:meth:`from_dict`), numpy only to read."""
        out: dict[str, Any] = {
            "format": FORMAT, "policy": self.policy, "threshold": float(self.threshold),
            "fitted": self.fitted, "target": self.target,
            "train_scores": [float(v) for v in self.train_scores],
            "sample_rates": list(self.sample_rates),
            "sections": {k: v.as_dict() for k, v in sorted(self.sections.items())},
            "fallback_sections": list(self.fallback),
        }
        if self.train_sections is not None:
            out["train_sections"] = list(self.train_sections)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decider:
        """Rebuild a rule written by :meth:`as_dict` (numpy only)."""
        train = np.asarray(data.get("train_scores") or [], dtype=np.float64)
        rates = tuple(int(r) for r in data.get("sample_rates") or ())
        sections = {str(k): cls.from_dict(v) for k, v in (data.get("sections") or {}).items()}
        target = data.get("target")
        ts = data.get("train_sections")
        return cls(float(data["threshold"]), train, str(data.get("policy", DEFAULT_POLICY)),
                   sections, tuple(data.get("fallback_sections") or ()),
                   bool(data.get("fitted", True)), None if target is None else float(target),
                   None if ts is None else tuple(str(s) for s in ts), rates)


# ---------------------------------------------------------------------- sections of paths
def section_of_path(path: str | os.PathLike[str]) -> str | None:
    """The section a file's name (or MIMII folder) gives, as the datasets' parsers read it.

    ``section_00_...`` (DCASE 2021-2024), ``normal_id_01_...`` / ``id_01_...`` (DCASE 2020)
    and ``.../id_04/normal/...`` (MIMII) name one; other names give None (the machine
    type's rule then applies). Used where no scores table is at hand (``watch``,
    ``serve``, the runtime), so that they decide as ``score`` does.
    """
    p = Path(path)
    name = p.name
    for parse in (names.parse_section_name, names.parse_dcase2020_name,
                  names.parse_dcase2020_eval_name):
        try:
            parsed = parse(name)
        except (ValueError, IndexError):
            parsed = None
        if parsed and parsed.get("section") is not None:
            return str(parsed["section"])
    parts = p.parts[-4:-1]
    for i, part in enumerate(parts):
        if part.startswith("id_") and part[3:].isdigit() and i + 1 < len(parts):
            return part[3:]
    return None


# ---------------------------------------------------------------------- saved rules
def decision_path(run_dir: str | os.PathLike[str], machine: str) -> Path:
    """``RUN/decisions/<machine>.json``."""
    return Path(run_dir) / DECISIONS_DIR / f"{machine}.json"


def save_decider(run_dir: str | os.PathLike[str], machine: str, decider: Decider) -> Path:
    """Write a machine type's rule to ``RUN/decisions/<machine>.json`` (atomically)."""
    path = decision_path(run_dir, machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"machine": machine, **decider.as_dict()})
    return path


def read_decider(run_dir: str | os.PathLike[str], machine: str) -> Decider | None:
    """The saved rule of a machine type, or None when the run has none (older runs).

    Raises:
        DetectorError: The file exists but cannot be read.
    """
    path = decision_path(run_dir, machine)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Decider.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DetectorError(path, f"unreadable decision rule ({exc})") from exc
