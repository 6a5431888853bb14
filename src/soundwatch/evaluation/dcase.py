"""DCASE Task 2 metric tables (2021-2024 by domain, 2020 per ID, labelled) and bootstrap CIs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.errors import EvaluationError
from soundwatch.evaluation.metrics import decision_metrics, floored_hmean, partial_auc, roc_auc

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MODES",
    "METRIC_COLUMNS",
    "infer_mode",
    "evaluable_rows",
    "Group",
    "iter_groups",
    "metric_table",
    "summarise",
    "bootstrap",
]

log = logging.getLogger(__name__)

MODES = ("dcase2024", "dcase2020", "labelled")
"""Evaluation modes; ``auto`` picks one with :func:`infer_mode`."""

METRIC_COLUMNS: dict[str, list[str]] = {
    "dcase2024": ["auc_source", "auc_target", "pauc"],
    "dcase2020": ["auc", "pauc"],
    "labelled": ["auc", "pauc"],
}
"""The threshold-free metrics of each mode (those the bootstrap gives CIs for)."""

_DOMAIN_CODE = {"source": 0, "target": 1}
NO_SECTION = ""


def infer_mode(df: pd.DataFrame) -> str:
    """Pick the evaluation mode a scores table calls for.

    ``dcase2020`` for DCASE 2020 / MIMII data (see :func:`soundwatch.scores.table_mode`),
    ``dcase2024`` when some rows have a ``source``/``target`` domain (DCASE 2021-2024
    layouts), else ``dcase2020`` when rows have a section (machine ID), else ``labelled``.
    """
    from soundwatch.scores import table_mode

    return table_mode(df)


def evaluable_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows metrics are computed on: not the training split, and with a known label.

    Unlabelled rows (label NaN) are left out with a logged warning.
    """
    out = df
    train = out["split"] == "train"
    if train.any():
        log.info("leaving out %d training-split row(s) of the scores table", int(train.sum()))
        out = out[~train]
    unlabelled = out["label"].isna()
    if unlabelled.any():  # all unlabelled (new recordings): the caller says so, once
        log.log(logging.INFO if unlabelled.all() else logging.WARNING,
                "%d of %d row(s) have no label and are left out of the metrics",
                int(unlabelled.sum()), len(out))
        out = out[~unlabelled]
    return out


@dataclass(frozen=True)
class Group:
    """The clips of one machine type and section, as arrays.

    Attributes:
        machine: Machine type.
        section: Section (``""`` when the table has none).
        y: Labels (1 = anomaly).
        score: Scores.
        domain: 0 source, 1 target, -1 unknown.
        decision: 0/1 decisions, or None before thresholding.
    """

    machine: str
    section: str
    y: np.ndarray
    score: np.ndarray
    domain: np.ndarray
    decision: np.ndarray | None

    def take(self, idx: np.ndarray) -> Group:
        """The group restricted to (or resampled at) some indices."""
        return Group(self.machine, self.section, self.y[idx], self.score[idx], self.domain[idx],
                     None if self.decision is None else self.decision[idx])


def iter_groups(df: pd.DataFrame) -> Iterator[Group]:
    """Split a labelled scores table into :class:`Group` s, sorted by machine and section."""
    sections = df["section"].where(df["section"].notna(), NO_SECTION).astype(str)
    keyed = df.assign(_section=sections.to_numpy())
    for (machine, section), part in keyed.groupby(["machine", "_section"], sort=True):
        domain = part["domain"].map(_DOMAIN_CODE).fillna(-1).to_numpy(dtype=np.int64)
        decision = part["decision"].to_numpy(dtype=np.int64) if "decision" in part else None
        yield Group(str(machine), str(section), part["label"].to_numpy(dtype=np.float64),
                    part["score"].to_numpy(dtype=np.float64), domain, decision)


def _nan_warn(value: float, what: str, group: Group, warn: bool) -> float:
    if warn and np.isnan(value):
        log.warning("%s section %s: %s is NaN (%s)", group.machine, group.section or "-",
                    what, "needs normal and anomalous clips")
    return value


def threshold_free_metrics(group: Group, mode: str, warn: bool = False) -> dict[str, float]:
    """The AUC-type metrics of one group in a mode.

    ``dcase2024``: ``auc_source`` over the source-domain normal clips and ALL anomalous clips
    of the section, ``auc_target`` likewise, ``pauc`` over every clip of the section (the
    official one), and ``pauc_source``/``pauc_target`` over the same clips as the AUCs
    (reported per domain, not part of the official score).
    ``dcase2020``/``labelled``: ``auc`` and ``pauc`` over every clip.
    """
    y, s, d = group.y, group.score, group.domain
    if mode == "dcase2024":
        out = {}
        for name, code in _DOMAIN_CODE.items():
            keep = (d == code) | (y == 1)
            out[f"auc_{name}"] = _nan_warn(roc_auc(y[keep], s[keep]), f"AUC ({name})", group,
                                           warn)
        out["pauc"] = _nan_warn(partial_auc(y, s), "pAUC", group, warn)
        for name, code in _DOMAIN_CODE.items():  # per domain, as the AUCs (not in the score)
            keep = (d == code) | (y == 1)
            out[f"pauc_{name}"] = partial_auc(y[keep], s[keep])
        return out
    return {"auc": _nan_warn(roc_auc(y, s), "AUC", group, warn),
            "pauc": _nan_warn(partial_auc(y, s), "pAUC", group, warn)}


def _counts(group: Group) -> dict[str, int]:
    y, d = group.y, group.domain
    out = {"n_clips": int(y.size), "n_normal": int(np.sum(y == 0)),
           "n_anomaly": int(np.sum(y == 1))}
    if np.any(d >= 0):
        for name, code in _DOMAIN_CODE.items():
            out[f"n_normal_{name}"] = int(np.sum((y == 0) & (d == code)))
            out[f"n_anomaly_{name}"] = int(np.sum((y == 1) & (d == code)))
    return out


def _decision_columns(group: Group, mode: str) -> tuple[dict[str, float], dict[str, Any]]:
    if group.decision is None:
        return {}, {}
    m = decision_metrics(group.y, group.decision)
    row: dict[str, float] = {"precision": m.precision, "recall": m.recall, "f1": m.f1}
    if mode == "labelled":
        row["accuracy"] = m.accuracy
    extra: dict[str, Any] = {"confusion": m.confusion, "accuracy": m.accuracy}
    if mode == "dcase2024":
        for name, code in _DOMAIN_CODE.items():
            keep = group.domain == code
            if keep.any():
                dm = decision_metrics(group.y[keep], group.decision[keep])
                extra[f"precision_{name}"] = dm.precision
                extra[f"recall_{name}"] = dm.recall
                extra[f"f1_{name}"] = dm.f1
    return row, extra


def _row_score(values: dict[str, float], mode: str) -> float:
    cols = METRIC_COLUMNS[mode]
    vals = [values[c] for c in cols]
    if mode == "dcase2024":
        if any(np.isnan(v) for v in vals):
            return float("nan")
        return floored_hmean(vals)
    return float(np.mean(vals))


def metric_table(df: pd.DataFrame, mode: str) -> tuple[pd.DataFrame, dict[tuple[str, str], Any]]:
    """Per machine type and section metrics of a labelled scores table.

    Args:
        df: Evaluable rows (see :func:`evaluable_rows`); a ``decision`` column adds
            precision, recall and F1 (and accuracy in ``labelled`` mode).
        mode: One of :data:`MODES`.

    Returns:
        ``(table, details)``: the table has one row per group with ``machine``, ``section``,
        counts, the mode's metric columns, decision columns and ``score`` (DCASE 2024: the
        floored harmonic mean of the row's three values; otherwise the mean of AUC and pAUC);
        ``details`` maps ``(machine, section)`` to the confusion matrix and per-domain
        decision metrics.
    """
    import pandas as pd

    if mode not in MODES:
        raise EvaluationError("mode", f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    rows = []
    details: dict[tuple[str, str], Any] = {}
    for group in iter_groups(df):
        values = threshold_free_metrics(group, mode, warn=True)
        dec, extra = _decision_columns(group, mode)
        rows.append({"machine": group.machine, "section": group.section, **_counts(group),
                     **values, **dec, "score": _row_score(values, mode)})
        details[(group.machine, group.section)] = extra
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=["machine", "section", *METRIC_COLUMNS[mode], "score"])
    return table, details


def summarise(
    table: pd.DataFrame, mode: str, pooled: list[Group] | None = None
) -> dict[str, float]:
    """The summary numbers of a metric table.

    ``dcase2024``: ``official_score`` is the harmonic mean, each value floored at machine
    epsilon, of ALL AUC (source), AUC (target) and pAUC values of every machine type and
    section together (NaN values left out with a warning); ``hmean_*`` and ``amean_*`` per
    metric. ``dcase2020``: AUC and pAUC are averaged over the sections (machine IDs) of each
    machine type, then over machine types; ``official_score`` is the mean of those two
    averages. ``labelled``: AUC and pAUC over all clips pooled (``official_score`` = that AUC)
    plus per-group means.

    Args:
        table: From :func:`metric_table`.
        mode: The table's mode.
        pooled: The groups (needed for the pooled ``labelled`` metrics).
    """
    if table.empty:
        return {"official_score": float("nan")}
    cols = METRIC_COLUMNS[mode]
    values = np.column_stack([table[c].to_numpy(dtype=np.float64) for c in cols])
    return _summary(values, [str(m) for m in table["machine"]], mode, pooled)


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def _summary(values: np.ndarray, machines: list[str], mode: str,
             pooled: list[Group] | None) -> dict[str, float]:
    """Summary numbers from a (groups x metrics) array, in the column order of the mode."""
    cols = METRIC_COLUMNS[mode]
    out: dict[str, float] = {}
    if mode == "dcase2024":
        flat = values.T.reshape(-1)
        out["official_score"] = floored_hmean(flat, "AUC (source), AUC (target) and pAUC")
        for i, c in enumerate(cols):
            col = values[:, i]
            out[f"hmean_{c}"] = floored_hmean(col, c) if np.any(~np.isnan(col)) else float("nan")
            out[f"amean_{c}"] = _nanmean(col)
        out["amean_all"] = _nanmean(flat)
        return out
    if mode == "dcase2020":
        names = np.asarray(machines)
        uniq = sorted(set(machines))
        per_machine = np.array([[_nanmean(values[names == m, i]) for i in range(len(cols))]
                                for m in uniq])
        for i, c in enumerate(cols):
            out[f"mean_{c}"] = _nanmean(per_machine[:, i])
        out["official_score"] = float(np.mean([out[f"mean_{c}"] for c in cols]))
        return out
    for i, c in enumerate(cols):
        out[f"mean_{c}"] = _nanmean(values[:, i])
    if pooled:
        y = np.concatenate([g.y for g in pooled])
        s = np.concatenate([g.score for g in pooled])
        out["pooled_auc"] = roc_auc(y, s)
        out["pooled_pauc"] = partial_auc(y, s)
        out["official_score"] = out["pooled_auc"]
    else:
        out["official_score"] = out["mean_auc"]
    return out


def machine_summary(table: pd.DataFrame, mode: str) -> pd.DataFrame:
    """One row per machine type: the mean of each metric over its sections.

    DCASE 2020 averaged AUC and pAUC over machine IDs per machine type; the same mean is given
    for the other modes as an overview (the DCASE 2024 official score itself does not use it).
    """
    cols = [c for c in [*METRIC_COLUMNS[mode], "precision", "recall", "f1", "accuracy"]
            if c in table.columns]
    return table.groupby("machine", sort=True)[cols].mean().reset_index()


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _strata(group: Group) -> list[np.ndarray]:
    key = group.y.astype(np.int64) * 4 + (group.domain + 1)
    return [np.flatnonzero(key == k) for k in np.unique(key)]


def bootstrap(
    df: pd.DataFrame,
    mode: str,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Percentile bootstrap confidence intervals of the threshold-free metrics.

    Clips are resampled with replacement within each machine type and section, stratified
    by label and domain (so every resample keeps the same numbers of source normals, target
    normals and anomalies as the data). Each replicate recomputes every group's metrics and
    the summary (official score).

    Args:
        df: Evaluable rows.
        mode: One of :data:`MODES`.
        n_boot: Number of bootstrap replicates.
        seed: Seed of the random generator (same seed, same intervals).
        level: Confidence level.
        progress: Called with the replicate index after each replicate.

    Returns:
        ``{"n_boot", "seed", "level", "groups": {"<machine>/<section>": {metric: [lo, hi]}},
        "summary": {name: [lo, hi]}}``.
    """
    if n_boot < 2:
        raise EvaluationError("--n-boot", f"need at least 2 bootstrap replicates, got {n_boot}")
    rng = np.random.default_rng(seed)
    groups = list(iter_groups(df))
    cols = METRIC_COLUMNS[mode]
    per_group = np.full((n_boot, len(groups), len(cols)), np.nan)
    group_score = np.full((n_boot, len(groups)), np.nan)
    summary_names: list[str] | None = None
    summaries: list[list[float]] = []
    strata = [_strata(g) for g in groups]
    machines = [g.machine for g in groups]
    with _quiet("soundwatch.evaluation.metrics"):  # NaN warnings were given once already
        for b in range(n_boot):
            resampled = []
            for gi, (group, parts) in enumerate(zip(groups, strata, strict=True)):
                idx = np.concatenate([p[rng.integers(0, p.size, p.size)] for p in parts])
                g = group.take(idx)
                resampled.append(g)
                vals = threshold_free_metrics(g, mode)
                per_group[b, gi] = [vals[c] for c in cols]
                group_score[b, gi] = _row_score(vals, mode)
            summ = _summary(per_group[b], machines, mode, resampled)
            if summary_names is None:
                summary_names = list(summ)
            summaries.append([summ[k] for k in summary_names])
            if progress is not None:
                progress(b)
    alpha = (1.0 - level) / 2.0

    def interval(values: np.ndarray) -> list[float]:
        finite = values[~np.isnan(values)]
        if finite.size == 0:
            return [float("nan"), float("nan")]
        lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
        return [float(lo), float(hi)]

    out_groups = {}
    for gi, g in enumerate(groups):
        out_groups[f"{g.machine}/{g.section}"] = {
            **{c: interval(per_group[:, gi, ci]) for ci, c in enumerate(cols)},
            "score": interval(group_score[:, gi]),
        }
    summ_arr = np.asarray(summaries, dtype=np.float64)
    out_summary = {k: interval(summ_arr[:, i]) for i, k in enumerate(summary_names or [])}
    return {"n_boot": n_boot, "seed": seed, "level": level, "groups": out_groups,
            "summary": out_summary}
