"""Self-check of a trained machine: how far its normal training data lets its alarms be trusted."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from soundwatch.errors import SoundwatchError
from soundwatch.runs import Run
from soundwatch.scores import read_scores_table

__all__ = [
    "FEW_CLIPS",
    "MIN_CLIPS",
    "UNIFORM_SPREAD_DB",
    "SelfCheck",
    "at_threshold",
    "false_alarm_estimate",
    "load_self_checks",
    "member_agreement",
    "run_self_checks",
    "self_check",
    "spectral_spread",
]

MIN_CLIPS = 10
"""Fewer normal training clips than this: the detector is not to be trusted."""
FEW_CLIPS = 30
"""Fewer than this: the false-alarm rate is known only roughly (a warning, milder)."""
UNIFORM_SPREAD_DB = 0.6
"""Clip-to-clip spread of the average spectrum (dB, median over bands) below which the
training clips sound alike: one recording session or one operating state."""
HIGH_FALSE_ALARMS = 0.05
"""An out-of-fold false-alarm estimate above this is called out."""


@dataclass
class SelfCheck:
    """What a machine's self-check found (JSON-ready through :meth:`to_dict`).

    Attributes:
        clips: Normal training clips.
        threshold: The decision threshold the estimate refers to.
        false_alarms: Out-of-fold training clips above the threshold.
        false_alarm_rate: ``false_alarms / clips`` (NaN without scores).
        false_alarm_ci: 95 % Clopper-Pearson interval of that rate.
        members: Ensemble members (0 for a single detector).
        member_agreement: Mean pairwise Spearman correlation of the members' out-of-fold
            normal scores (``None`` for a single detector or too few clips).
        spread_db: Clip-to-clip spread of the average spectrum (dB), or ``None``.
        level_range_db: Range of the clips' RMS levels (dB), or ``None``.
        clips_measured: Clips the spread was measured on.
        trust: ``"ok"``, ``"caution"`` or ``"low"``.
        warnings: Plain sentences: what is wrong and what would help.
    """

    clips: int
    threshold: float
    false_alarms: int
    false_alarm_rate: float
    false_alarm_ci: tuple[float, float]
    members: int = 0
    member_agreement: float | None = None
    spread_db: float | None = None
    level_range_db: float | None = None
    clips_measured: int = 0
    trust: str = "ok"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content (NaN as ``None``)."""
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, tuple | list):
                return [clean(x) for x in v]
            return v

        return {k: clean(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SelfCheck:
        """Read back :meth:`to_dict`'s content (unknown keys ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        ci = known.get("false_alarm_ci") or [None, None]
        known["false_alarm_ci"] = tuple(float("nan") if v is None else float(v) for v in ci)
        for key in ("threshold", "false_alarm_rate"):
            if known.get(key) is None:
                known[key] = float("nan")
        known.setdefault("clips", 0)
        known.setdefault("false_alarms", 0)
        known["warnings"] = list(known.get("warnings") or [])
        return cls(**known)


def false_alarm_estimate(train_scores: Sequence[float] | np.ndarray,
                         threshold: float) -> tuple[int, int, float, tuple[float, float]]:
    """Out-of-fold false alarms of a threshold on the normal training scores.

    Args:
        train_scores: Out-of-fold scores of the normal training clips.
        threshold: A clip is an alarm when its score is above it.

    Returns:
        ``(alarms, clips, rate, (low, high))``: the count above the threshold, the number of
        finite scores, the rate and its 95 % Clopper-Pearson interval (NaN without scores).
    """
    from scipy.stats import binomtest

    x = np.asarray(train_scores, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0 or not math.isfinite(float(threshold)):
        return 0, n, float("nan"), (float("nan"), float("nan"))
    k = int((x > threshold).sum())
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return k, n, k / n, (float(ci.low), float(ci.high))


def member_agreement(member_scores: Sequence[Sequence[float] | np.ndarray]) -> float | None:
    """Mean pairwise Spearman correlation of ensemble members' out-of-fold normal scores.

    1: the members rank the normal clips alike; near 0: each finds other clips unusual;
    negative: they contradict each other.

    Args:
        member_scores: One array per member, the same clips in the same order.

    Returns:
        The mean correlation, or ``None`` with fewer than two members or three clips, or
        when a member's scores are constant.
    """
    from scipy.stats import spearmanr

    arrays = [np.asarray(s, dtype=np.float64).reshape(-1) for s in member_scores]
    if len(arrays) < 2 or len({a.size for a in arrays}) != 1 or arrays[0].size < 3:
        return None
    stack = np.vstack(arrays)
    keep = np.isfinite(stack).all(axis=0)
    stack = stack[:, keep]
    if stack.shape[1] < 3 or np.any(np.ptp(stack, axis=1) == 0):
        return None
    rho = spearmanr(stack, axis=1).statistic
    if stack.shape[0] == 2:
        return float(rho)
    upper = np.asarray(rho)[np.triu_indices(stack.shape[0], k=1)]
    return float(np.mean(upper))


def spectral_spread(signals: Sequence[np.ndarray], sr: int, bands: int = 24
                    ) -> tuple[float, float] | None:
    """How much the clips differ from each other in average spectrum and level.

    Each clip's power spectrogram is summed into ``bands`` log-spaced bands (50 Hz to
    Nyquist) and averaged over time in dB; the spread is the median over bands of the
    clip-to-clip standard deviation of those averages. Copies cut from one steady recording
    give a few tenths of a dB; recordings of different days, loads or speeds give several.

    Args:
        signals: Mono waveforms (at least two).
        sr: Their sample rate.
        bands: Log-spaced bands.

    Returns:
        ``(spread_db, level_range_db)``, or ``None`` with fewer than two usable clips.
    """
    from scipy.signal import spectrogram

    nper = 1024 if sr >= 16000 else 512
    means, levels = [], []
    for x in signals:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.size < nper or not np.isfinite(x).all():
            continue
        freqs, _, power = spectrogram(x, sr, nperseg=nper, noverlap=nper // 2)
        edges = np.geomspace(50.0, sr / 2, bands + 1)
        idx = np.searchsorted(edges, freqs, side="right") - 1
        member = (idx[:, None] == np.arange(bands)[None, :]).astype(np.float64)
        summed = member.T @ power  # bands x frames: band power per frame
        means.append(10 * np.log10(summed + 1e-12).mean(axis=1))
        levels.append(10 * np.log10(np.mean(x**2) + 1e-20))
    if len(means) < 2:
        return None
    spread = float(np.median(np.std(np.vstack(means), axis=0, ddof=1)))
    return spread, float(np.ptp(levels))


def self_check(
    train_scores: Sequence[float] | np.ndarray,
    threshold: float,
    *,
    member_scores: Sequence[Sequence[float] | np.ndarray] | None = None,
    signals: Sequence[np.ndarray] | None = None,
    sr: int | None = None,
) -> SelfCheck:
    """The self-check of one machine's trained detector.

    Args:
        train_scores: Out-of-fold scores of the normal training clips.
        threshold: The run's decision threshold for the machine.
        member_scores: Ensemble members' out-of-fold scores of the same clips (``None``
            for a single detector).
        signals: Some normal training waveforms, to measure how alike they sound
            (optional).
        sr: Their sample rate.

    Returns:
        The :class:`SelfCheck`, with plain warnings when the data is too small or too
        uniform, the false-alarm estimate is high, or the members contradict each other.
    """
    k, n, rate, ci = false_alarm_estimate(train_scores, threshold)
    agree = member_agreement(member_scores) if member_scores is not None else None
    spread = spectral_spread(signals, int(sr)) if signals is not None and sr else None
    check = SelfCheck(
        clips=n, threshold=float(threshold), false_alarms=k, false_alarm_rate=rate,
        false_alarm_ci=ci, members=len(member_scores) if member_scores is not None else 0,
        member_agreement=agree,
        spread_db=None if spread is None else spread[0],
        level_range_db=None if spread is None else spread[1],
        clips_measured=0 if signals is None else len(signals),
    )
    trust, warnings = _count_warnings(n, ci)
    if check.spread_db is not None and check.spread_db < UNIFORM_SPREAD_DB:
        trust = "low" if trust == "low" else "caution"
        warnings.append(
            f"The training clips sound almost alike (their average spectra differ by "
            f"{check.spread_db:.2f} dB, levels by {check.level_range_db:.1f} dB): probably "
            "one session or one operating state. Other states of a healthy machine may be "
            "flagged; add normal recordings of each state (start-up, other speeds and loads, "
            "other days).")
    if math.isfinite(rate) and n >= MIN_CLIPS and rate > HIGH_FALSE_ALARMS:
        trust = "low" if trust == "low" else "caution"
        warnings.append(
            f"{k} of {n} normal training clips score above the threshold when left out of "
            f"training ({_pct(rate)}): expect about that share of false alarms on normal "
            "recordings. Raise the threshold, or add normal recordings like the ones above it.")
    if agree is not None and agree < 0:
        trust = "low" if trust == "low" else "caution"
        warnings.append(
            f"The ensemble's members disagree about which normal clips are unusual "
            f"(correlation {agree:.2f}): decisions near the threshold are uncertain. More "
            "normal clips help.")
    check.trust = trust
    check.warnings = warnings
    return check


def _pct(value: float) -> str:
    if not math.isfinite(value):
        return "unknown"
    return f"{100 * value:.0f}%" if value >= 0.1 or value == 0 else f"{100 * value:.1f}%"


def run_self_checks(info: Mapping[str, Any]) -> dict[str, SelfCheck]:
    """The self-checks a run recorded (``run.json``'s ``machines.<m>.self_check``).

    Args:
        info: The content of ``run.json``.

    Returns:
        machine -> self-check; machines trained without one are left out.
    """
    out: dict[str, SelfCheck] = {}
    machines = info.get("machines") if isinstance(info, Mapping) else None
    for machine, facts in (machines or {}).items():
        data = facts.get("self_check") if isinstance(facts, Mapping) else None
        if isinstance(data, Mapping):
            try:
                out[str(machine)] = SelfCheck.from_dict(data)
            except (TypeError, ValueError):
                continue
    return out


def _count_warnings(n: int, ci: tuple[float, float]) -> tuple[str, list[str]]:
    """The trust level and warning that the number of normal training clips alone gives."""
    more = ("Record more normal clips (at least 30, better 100 or more), spread over days "
            "and over every operating state the machine runs in (speeds, loads, products).")
    if n < MIN_CLIPS:
        return "low", [
            f"Only {n} normal training clip(s): too few to trust the detector. Its idea of "
            "normal rests on a handful of recordings, and the false-alarm rate cannot be "
            f"measured (anywhere from {_pct(ci[0])} to {_pct(ci[1])}). {more}"]
    if n < FEW_CLIPS:
        return "caution", [
            f"Only {n} normal training clips: the false-alarm rate is known only roughly "
            f"({_pct(ci[0])} to {_pct(ci[1])}). {more}"]
    return "ok", []


def at_threshold(check: SelfCheck, train_scores: Sequence[float] | np.ndarray,
                 threshold: float) -> SelfCheck:
    """The same self-check with its false-alarm estimate redone for another threshold.

    The run's threshold may change after training (a new alarm level), and normal clips
    may be added (``soundwatch add-normal``); agreement, spread and trust stay, the clip
    count, the estimate and their warnings follow the training scores given.
    """
    import dataclasses

    k, n, rate, ci = false_alarm_estimate(train_scores, threshold)
    if n == 0:
        return check
    warnings = [w for w in check.warnings if "score above the threshold" not in w]
    if n != check.clips:  # normal clips added since (add-normal): the count's warning redone
        warnings = [w for w in warnings if not w.startswith("Only ")]
        warnings[:0] = _count_warnings(n, ci)[1]
    if math.isfinite(rate) and n >= MIN_CLIPS and rate > HIGH_FALSE_ALARMS:
        warnings.append(
            f"{k} of {n} normal training clips score above the threshold when left out of "
            f"training ({_pct(rate)}): expect about that share of false alarms on normal "
            "recordings. Raise the threshold, or add normal recordings like the ones above it.")
    return dataclasses.replace(check, clips=n, threshold=float(threshold), false_alarms=k,
                               false_alarm_rate=rate, false_alarm_ci=ci, warnings=warnings)


def load_self_checks(run_dir: str | Any) -> dict[str, SelfCheck]:
    """The self-checks of a run folder, at the thresholds its training scores carry now.

    Args:
        run_dir: A run folder written by ``soundwatch train``.

    Returns:
        machine -> self-check (machines trained without one are left out).

    Raises:
        ConfigError: Not a run folder, or an unreadable ``run.json``.
    """
    run = Run.open(run_dir, need_detector=False)
    checks = run_self_checks(run.info)
    path = run.train_scores_path
    if not checks or not path.is_file():
        return checks
    try:
        table = read_scores_table(path)
    except SoundwatchError:
        return checks
    if "threshold" not in table:
        return checks
    for machine, check in list(checks.items()):
        rows = table[table["machine"].astype(str) == machine]
        values = rows["threshold"].dropna().unique()
        if len(values) == 1 and (not math.isclose(float(values[0]), check.threshold)
                                 or len(rows) != check.clips):
            checks[machine] = at_threshold(check, rows["score"].to_numpy(float),
                                           float(values[0]))
    return checks
