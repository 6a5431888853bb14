"""Evaluate a scores table or a run folder: metrics, thresholds, decisions, plots and report."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.atomic import atomic_open, write_json
from soundwatch.errors import EvaluationError
from soundwatch.evaluation import dcase
from soundwatch.evaluation.metrics import decision_metrics, floored_hmean
from soundwatch.thresholds import (
    DEFAULT_POLICY,
    Thresholds,
    ThresholdSpec,
    apply_thresholds,
    fit_thresholds,
    parse_threshold,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EvaluationResult", "evaluate_scores", "evaluate_run", "find_scores_dir",
           "MODE_CHOICES"]

log = logging.getLogger(__name__)

MODE_CHOICES = ("auto", *dcase.MODES)

DEFINITIONS = {
    "dcase2024": (
        "Per machine type and section: AUC (source) over the source-domain normal clips and "
        "all anomalous clips; AUC (target) likewise; pAUC (FPR <= 0.1, McClish-standardised "
        "as sklearn max_fpr=0.1) over all clips. Official score: harmonic mean of all AUC "
        "(source), AUC (target) and pAUC values together, each floored at machine epsilon; "
        "NaN values are left out with a warning."
    ),
    "dcase2020": (
        "Per machine type and machine ID (section): AUC and pAUC (FPR <= 0.1) over all "
        "clips; averaged over the IDs of each machine type (DCASE 2020 baseline), then over "
        "machine types. Official score: the mean of those average AUC and average pAUC."
    ),
    "labelled": (
        "Per task (machine) and overall: ROC AUC and pAUC over the labelled clips; accuracy, "
        "precision, recall, F1 and confusion matrix of the thresholded decisions. Official "
        "score: the ROC AUC over all clips pooled."
    ),
}


@dataclass
class EvaluationResult:
    """What an evaluation produced.

    Attributes:
        mode: The evaluation mode used.
        results: Per machine type and section rows plus summary rows (as in results.csv).
        sections: The per-section metric table only.
        machines: Per machine type means.
        summary: Summary numbers (``official_score`` and the mode's means).
        metrics: The JSON-ready content of metrics.json.
        scores: The evaluated test table with ``label`` joined and the scoring's
            ``decision`` (fitted here only for a table scored without decisions).
        thresholds: The thresholds behind the decisions (``spec`` names their policy).
        suggestions: Other thresholds evaluate suggests (never applied): policy ->
            thresholds, flagged count and, with labels, their decision metrics.
        ci: Bootstrap intervals, or None.
        warnings: Warnings logged during the evaluation.
        paths: Files written (``metrics``, ``results``, ``report``, ``decisions``, ``plots``).
    """

    mode: str
    results: pd.DataFrame
    sections: pd.DataFrame
    machines: pd.DataFrame
    summary: dict[str, float]
    metrics: dict[str, Any]
    scores: pd.DataFrame
    thresholds: Thresholds
    ci: dict[str, Any] | None = None
    suggestions: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    paths: dict[str, Any] = field(default_factory=dict)

    @property
    def official_score(self) -> float:
        """The mode's single summary number (DCASE 2024: the official harmonic mean)."""
        return float(self.summary.get("official_score", float("nan")))


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    handler = _WarningCollector()
    logger = logging.getLogger("soundwatch")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _json_num(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _json_num(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_num(v) for v in value]
    return value


def _pooled_decisions(df: pd.DataFrame) -> dict[str, float]:
    if "decision" not in df or df.empty:
        return {}
    m = decision_metrics(df["label"].to_numpy(), df["decision"].to_numpy())
    return {"precision": m.precision, "recall": m.recall, "f1": m.f1, "accuracy": m.accuracy}


def _results_table(
    table: pd.DataFrame, machines: pd.DataFrame, summary: dict[str, float], mode: str,
    labelled: pd.DataFrame, ci: dict[str, Any] | None,
) -> pd.DataFrame:
    import pandas as pd

    cols = dcase.METRIC_COLUMNS[mode]
    dec_cols = [c for c in ("precision", "recall", "f1", "accuracy") if c in table.columns]
    rows: list[dict[str, Any]] = [dict(r) for r in table.to_dict("records")]
    if ci is not None:
        for row in rows:
            intervals = ci["groups"].get(f"{row['machine']}/{row['section']}", {})
            for c in [*cols, "score"]:
                lo, hi = intervals.get(c, [float("nan")] * 2)
                row[f"{c}_ci_low"], row[f"{c}_ci_high"] = lo, hi
    summary_ci = ci["summary"] if ci is not None else {}

    def add_ci(row: dict[str, Any], mapping: dict[str, str]) -> None:
        if ci is None:
            return
        for col, key in mapping.items():
            lo, hi = summary_ci.get(key, [float("nan")] * 2)
            row[f"{col}_ci_low"], row[f"{col}_ci_high"] = lo, hi

    if table.empty:
        return pd.DataFrame(rows)
    if mode == "dcase2024":
        amean = {"machine": "arithmetic mean", "section": ""}
        amean.update({c: summary[f"amean_{c}"] for c in cols})
        amean.update({c: float(table[c].mean()) for c in dec_cols})
        amean["score"] = summary["amean_all"]
        official = {"machine": "official score", "section": ""}
        official.update({c: summary[f"hmean_{c}"] for c in cols})
        official.update({c: floored_hmean(table[c].to_numpy(dtype=float), c) for c in dec_cols})
        official["score"] = summary["official_score"]
        add_ci(official, {**{c: f"hmean_{c}" for c in cols}, "score": "official_score"})
        rows += [amean, official]
    elif mode == "dcase2020":
        for rec in machines.to_dict("records"):
            avg = {"machine": rec["machine"], "section": "average", **{
                c: rec[c] for c in [*cols, *dec_cols] if c in rec}}
            avg["score"] = float(np.mean([rec[c] for c in cols]))
            rows.append(avg)
        official = {"machine": "official score", "section": ""}
        official.update({c: summary[f"mean_{c}"] for c in cols})
        official.update({c: float(machines[c].mean()) for c in dec_cols if c in machines})
        official["score"] = summary["official_score"]
        add_ci(official, {**{c: f"mean_{c}" for c in cols}, "score": "official_score"})
        rows.append(official)
    else:
        official = {"machine": "official score", "section": "all clips",
                    "n_clips": len(labelled), "n_normal": int((labelled["label"] == 0).sum()),
                    "n_anomaly": int((labelled["label"] == 1).sum())}
        official.update({"auc": summary.get("pooled_auc"), "pauc": summary.get("pooled_pauc")})
        official.update({k: v for k, v in _pooled_decisions(labelled).items() if k in dec_cols})
        official["score"] = summary["official_score"]
        add_ci(official, {"auc": "pooled_auc", "pauc": "pooled_pauc", "score": "official_score"})
        rows.append(official)
    out = pd.DataFrame(rows)
    for c in out.columns:
        if c.startswith("n_"):
            out[c] = out[c].astype("Int64")
    out["section"] = out["section"].fillna("").astype(str)
    return out


def _machine_confusions(details: dict[tuple[str, str], Any]) -> dict[str, list[list[int]]]:
    out: dict[str, np.ndarray] = {}
    for (machine, _section), extra in details.items():
        if "confusion" in extra:
            out[machine] = out.get(machine, np.zeros((2, 2), dtype=np.int64)) + np.asarray(
                extra["confusion"], dtype=np.int64)
    return {k: v.tolist() for k, v in out.items()}


def _scored_thresholds(table: pd.DataFrame, policy: str | None) -> Thresholds:
    """The thresholds a decided table was decided with, one per machine type and section."""
    spec = ThresholdSpec("as-scored")
    if policy:
        with contextlib.suppress(EvaluationError):
            spec = parse_threshold(policy)
    out = Thresholds(spec)
    sections = table["section"].where(table["section"].notna(), "").astype(str)
    for (machine, section), part in table.assign(_sec=sections).groupby(["machine", "_sec"]):
        values = part["threshold"].dropna().unique()
        if len(values):
            out.values[(str(machine), str(section))] = float(values[0])
            out.details[(str(machine), str(section))] = {"fitted_on": "training (saved rule)"}
    return out


def _suggest(table: pd.DataFrame, train: pd.DataFrame | None, policies: list[str],
             ) -> dict[str, Any]:
    """What other thresholds would decide: suggestions, never applied to the decisions."""
    out: dict[str, Any] = {}
    labelled = table["label"].notna()
    for policy in policies:
        try:
            spec = parse_threshold(policy)
            if spec.needs_train_scores and (train is None or train.empty):
                continue
            if spec.optimistic and table.loc[labelled, "label"].nunique() < 2:
                continue
            fitted = fit_thresholds(spec, table, train)
        except EvaluationError as exc:
            log.warning("suggestion %s not computed: %s", policy, exc.reason)
            continue
        decided = apply_thresholds(table, fitted)
        entry: dict[str, Any] = {
            "status": "suggestion (not applied: the decisions are the scoring's)",
            "optimistic": spec.optimistic,
            "thresholds": fitted.as_dict()["values"],
            "flagged": int(decided["decision"].sum()),
        }
        if labelled.any():
            entry.update(_pooled_decisions(decided[labelled]))
        out[str(spec)] = entry
    return out


def evaluate_scores(
    scores: pd.DataFrame,
    train_scores: pd.DataFrame | None = None,
    ground_truth: str | os.PathLike[str] | None = None,
    threshold: str | None = None,
    ci: bool = False,
    mode: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    policy: str | None = None,
) -> EvaluationResult:
    """Evaluate a scores table in memory (nothing is written).

    The decisions are the scoring's (its ``threshold`` and ``decision`` columns, from
    the rule fixed at training: :mod:`soundwatch.decisions`), so the evaluation flags
    exactly the clips ``score`` flagged. Only a table scored without decisions gets
    them fitted here (``threshold``, default ``far:0.01``, on the training scores).
    Other thresholds are *suggested* in ``suggestions`` (``threshold`` when it differs
    from the decisions' policy, and ``best-f1`` when labels allow; optimistic), never
    applied.

    Args:
        scores: The test scores table (:data:`soundwatch.scores.SCORE_COLUMNS`).
        train_scores: The training clips' scores (for fitting and suggestions).
        ground_truth: Folder (or file) of DCASE ground-truth CSVs to join labels and
            domains from (read by :func:`soundwatch.datasets.metadata.read_ground_truth`).
        threshold: A policy to suggest (``far:RATE``, ``gamma[:Q]``, ``best-f1``,
            ``fixed:VALUE``, ``contamination:Q``), or to decide with when the table has
            no decisions.
        ci: Add bootstrap 95 % confidence intervals.
        mode: ``auto``, ``dcase2024``, ``dcase2020`` or ``labelled``.
        n_boot: Bootstrap replicates.
        seed: Bootstrap seed.
        policy: The policy the table's decisions were made with (for the record).

    Returns:
        The :class:`EvaluationResult` (``paths`` empty).

    Raises:
        EvaluationError: On an empty table, a bad option, missing training scores, or
            ground truth matching no scored file.
        DatasetError: If the ground-truth folder is missing, empty or holds a bad CSV.
    """
    from soundwatch.datasets.metadata import read_ground_truth
    from soundwatch.evaluation.ground_truth import join_ground_truth
    from soundwatch.scores import validate_scores_table

    if mode not in MODE_CHOICES:
        raise EvaluationError("--mode", f"unknown mode {mode!r}; expected one of "
                              f"{', '.join(MODE_CHOICES)}")
    asked = parse_threshold(threshold) if threshold else None
    with _collect_warnings() as warnings:
        started = time.perf_counter()
        table = validate_scores_table(scores)
        table = table[table["split"] != "train"].reset_index(drop=True)
        if table.empty:
            raise EvaluationError("scores", "the scores table has no test rows to evaluate")
        if ground_truth is not None:
            table = join_ground_truth(table, read_ground_truth(ground_truth), str(ground_truth))
        train = None
        if train_scores is not None:
            train = validate_scores_table(train_scores, "train scores")
        chosen = dcase.infer_mode(table) if mode == "auto" else mode
        decided_before = "decision" in table and "threshold" in table \
            and table["threshold"].notna().all()
        if decided_before:
            thresholds = _scored_thresholds(table, policy)
            decided = table
            source = "scoring"
        else:
            spec = asked or parse_threshold(DEFAULT_POLICY)
            if spec.needs_train_scores and (train is None or train.empty):
                raise EvaluationError("train scores", f"the {spec.policy} threshold needs the "
                                      "training clips' scores")
            thresholds = fit_thresholds(spec, table, train)
            if spec.optimistic:
                log.warning("best-f1 threshold is chosen on the test labels: precision, "
                            "recall and F1 are optimistic")
            decided = apply_thresholds(table, thresholds)
            if "status" in decided:
                decided.loc[decided["status"] != "ok", "decision"] = 0
            source = "evaluate (the table had no decisions)"
        wanted = [str(asked)] if asked is not None and str(asked) != str(thresholds.spec) else []
        suggestions = _suggest(table, train, [*wanted, "best-f1"])
        labelled = dcase.evaluable_rows(decided)
        if labelled.empty:
            log.info("no labelled clips: metrics need labels (pass ground truth)")
        sections, details = dcase.metric_table(labelled, chosen)
        groups = list(dcase.iter_groups(labelled))
        summary = dcase.summarise(sections, chosen, groups)
        machines = dcase.machine_summary(sections, chosen) if not sections.empty else sections
        intervals = None
        if ci and not labelled.empty:
            intervals = dcase.bootstrap(labelled, chosen, n_boot=n_boot, seed=seed)
        results = _results_table(sections, machines, summary, chosen, labelled, intervals)
        elapsed = time.perf_counter() - started
    status = decided["status"] if "status" in decided else None
    metrics = {
        "mode": chosen,
        "definition": DEFINITIONS[chosen],
        "official_score": summary.get("official_score"),
        "summary": summary,
        "threshold": thresholds.as_dict(),
        "decision": {"source": source, "policy": str(thresholds.spec),
                     "rule": "anomaly when score > threshold; clips with a sensor status "
                             "are never anomalies",
                     "flagged": int(decided["decision"].sum())},
        "suggestions": suggestions,
        "counts": {
            "clips": len(decided),
            "labelled": len(labelled),
            "unlabelled": int(decided["label"].isna().sum()),
            "normal": int((labelled["label"] == 0).sum()),
            "anomaly": int((labelled["label"] == 1).sum()),
            "flagged": int(decided["decision"].sum()),
            "sensor": 0 if status is None else int((status == "sensor").sum()),
            "machines": sorted(decided["machine"].astype(str).unique().tolist()),
        },
        "sections": [
            {**row, **details.get((row["machine"], row["section"]), {})}
            for row in sections.to_dict("records")
        ],
        "machines": machines.to_dict("records"),
        "confusion": _machine_confusions(details),
        "ci": intervals,
        "warnings": list(warnings),
        "seconds": elapsed,
    }
    return EvaluationResult(
        mode=chosen, results=results, sections=sections, machines=machines, summary=summary,
        metrics=_json_num(metrics), scores=decided, thresholds=thresholds, ci=intervals,
        warnings=list(warnings), suggestions=suggestions,
    )


def _write_results_csv(results: pd.DataFrame, path: Path) -> Path:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        results.to_csv(handle, index=False, lineterminator="\n", float_format="%.6f")
    return path


def find_scores_dir(
    run_dir: str | os.PathLike[str], scores: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """The run folder and the scores folder to evaluate.

    Args:
        run_dir: A run folder, or a scoring folder (``RUN/scores/<name>``) itself.
        scores: A scoring folder, its ``scores.csv``, or a scoring's name under
            ``RUN/scores/``; default the newest finished scoring
            (:meth:`soundwatch.runs.Run.scorings`).

    Returns:
        ``(run_root, scores_dir)``.

    Raises:
        EvaluationError: The run folder or the scores are missing.
    """
    import json

    from soundwatch.runs import Run

    run = Path(run_dir)
    if not run.is_dir():
        raise EvaluationError(run, "run folder not found")
    if scores is None and (run / "scores.csv").is_file() and not (run / "config.yaml").is_file():
        scores, run = run, (run.parent.parent if (run.parent.parent / "config.yaml").is_file()
                            else run)
    if scores is not None:
        folder = Path(scores)
        if not (folder / "scores.csv").is_file() and not folder.is_file() \
                and (run / "scores" / folder).exists():  # a scoring's name under RUN/scores
            folder = run / "scores" / folder
        if folder.is_file():
            folder = folder.parent
        if not (folder / "scores.csv").is_file() and any(folder.glob("*_events.json")):
            raise EvaluationError(folder, "a long recording scored in windows: no metrics; "
                                  "its report: soundwatch.evaluation.windows_report")
        if not (folder / "scores.csv").is_file():
            raise EvaluationError(folder / "scores.csv", "scores table not found")
        return run, folder
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((run / "run.json").read_text(encoding="utf-8"))
        info = loaded if isinstance(loaded, dict) else {}
    latest = Run(run, info).latest_scores_dir
    if latest is None:
        raise EvaluationError(run / "scores" / "<name>" / "scores.csv",
                              "scores table not found (run `soundwatch score` first)")
    return run, latest


def evaluate_run(
    run_dir: str | os.PathLike[str],
    ground_truth: str | os.PathLike[str] | None = None,
    threshold: str | None = None,
    ci: bool = False,
    mode: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    plots: bool = True,
    report: bool = True,
    scores: str | os.PathLike[str] | None = None,
    explain: int = 5,
) -> EvaluationResult:
    """Evaluate one scoring of a run: metrics.json, results.csv, plots/, report.html.

    Reads the scoring's ``scores.csv`` (default: the run's newest scoring, see
    :func:`find_scores_dir`) and ``RUN/scores/train_scores.csv`` (for suggested thresholds
    and the score distributions), and writes everything
    into the scoring's own folder, so evaluating one scoring never overwrites another's
    results: the DCASE decision files (``decision_result_<machine>_section_<XX>_test.csv``,
    ``decision_result_<machine>_id_<XX>.csv`` in DCASE 2020 mode), ``metrics.json``,
    ``results.csv``, ``plots/``, ``explain/`` and the machine-centric ``report.html``. A run
    scored by an older version (``RUN/scores/scores.csv``) gets them in ``RUN`` as before.

    Args:
        run_dir: The run folder (or a scoring folder).
        ground_truth: Folder of DCASE ground-truth CSVs.
        threshold: A policy to suggest besides the scoring's decisions (see
            :func:`evaluate_scores`); the decisions are never replaced.
        ci: Add bootstrap 95 % confidence intervals.
        mode: ``auto`` (from the data), ``dcase2024``, ``dcase2020`` or ``labelled``.
        n_boot: Bootstrap replicates.
        seed: Bootstrap seed.
        plots: Draw the PNG plots.
        report: Write report.html.
        scores: The scoring to evaluate (folder, its ``scores.csv`` or its name).
        explain: Explanation images for up to this many flagged clips per machine in the
            report (0: none); needs the run's detectors and the audio.

    Returns:
        The :class:`EvaluationResult`, ``paths`` filled.

    Raises:
        EvaluationError: If the run folder or a needed scores file is missing or invalid.
        DatasetError: If the ground-truth folder is missing, empty or holds a bad CSV.
    """
    from soundwatch.scores import read_scores_table, write_dcase_decisions

    run, scores_dir = find_scores_dir(run_dir, scores)
    legacy = scores_dir.resolve() == (run / "scores").resolve()
    out_dir = run if legacy else scores_dir
    scores_path = scores_dir / "scores.csv"
    train_path = run / "scores" / "train_scores.csv"
    spec = parse_threshold(threshold) if threshold else None
    _check_recorded(run, scores_path, train_path)
    table = read_scores_table(scores_path)
    train = None
    decided = "decision" in table and "threshold" in table
    if not decided and (spec is None or spec.needs_train_scores) and not train_path.is_file():
        raise EvaluationError(train_path, "not found: the scoring has no decisions and fitting "
                              "a threshold needs the training clips' scores (or use "
                              "--threshold best-f1 / fixed:V)")
    if train_path.is_file():
        train = read_scores_table(train_path)
    started = time.perf_counter()
    result = evaluate_scores(table, train, ground_truth=ground_truth, threshold=threshold,
                             ci=ci, mode=mode, n_boot=n_boot, seed=seed,
                             policy=_scoring_policy(run, scores_dir))
    result.metrics["decision"]["machines"] = _run_decisions(run, scores_dir)
    paths: dict[str, Any] = {"scores_dir": scores_dir}
    known = result.scores
    if "layout" in known:
        known = known[known["layout"] != "any"]
    paths["decisions"] = (write_dcase_decisions(known, scores_dir, mode=result.mode)
                          if len(known) else [])
    paths["results"] = _write_results_csv(result.results, out_dir / "results.csv")
    labelled = result.scores[result.scores["label"].notna()]
    if plots and not labelled.empty:
        from soundwatch.evaluation.plots import make_plots

        paths["plots"] = make_plots(labelled, result.mode, out_dir / "plots", result.machines,
                                    result.metrics.get("confusion"), result.thresholds)
    result.metrics["files"] = {k: v for k, v in _json_paths(paths, run).items()}
    paths["metrics"] = out_dir / "metrics.json"
    write_json(paths["metrics"], result.metrics)
    if report:
        from soundwatch.evaluation.report import write_report

        paths["report"] = write_report(run, result, paths.get("plots"), scores_dir=scores_dir,
                                       out_dir=out_dir, train=train, explain=explain,
                                       draw=plots)
    result.paths = paths
    _record_evaluation(run, scores_dir, result, time.perf_counter() - started)
    log.info("evaluated %s: %s official score %.4f", scores_dir, result.mode,
             result.official_score)
    return result


def _record_evaluation(run: Path, scores_dir: Path, result: EvaluationResult,
                       seconds: float) -> None:
    """Record the evaluation in ``run.json`` (``evaluate/<scoring>`` step) when it is a run."""
    from soundwatch.errors import SoundwatchError
    from soundwatch.runs import Run

    try:
        opened = Run.open(run, need_detector=False)
    except SoundwatchError:
        return
    try:
        name = str(scores_dir.resolve().relative_to((run / "scores").resolve())) or "."
    except ValueError:
        name = str(scores_dir.resolve())
    try:
        opened.record_step(f"evaluate/{name}", seconds, mode=result.mode,
                           threshold=str(result.thresholds.spec),
                           official_score=_json_num(result.official_score))
    except SoundwatchError as exc:  # e.g. another command holds the run's lock
        log.warning("evaluation not recorded in run.json: %s", exc)
    finally:
        if hasattr(opened, "close"):
            opened.close()


def _scoring_info(run: Path, scores_dir: Path) -> dict[str, Any]:
    """The ``run.json`` entry of a scoring (``{}`` when unknown)."""
    import json

    try:
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    for entry in (info.get("scorings") or {}).values():
        if isinstance(entry, dict) and entry.get("folder") and \
                Path(entry["folder"]).resolve() == scores_dir.resolve():
            return entry
    return {}


def _run_decisions(run: Path, scores_dir: Path) -> dict[str, Any]:
    """Per machine type: the rule the scoring decided with (policy, threshold, false alarms)."""
    import json

    found = _scoring_info(run, scores_dir).get("decisions")
    if found:
        return found
    try:
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info.get("decisions") or {}


def _scoring_policy(run: Path, scores_dir: Path) -> str | None:
    """The policy a scoring decided with, when all its machine types share one."""
    policies = {str(d.get("policy")) for d in _run_decisions(run, scores_dir).values()
                if isinstance(d, dict)}
    return policies.pop() if len(policies) == 1 else None


def _check_recorded(run: Path, *paths: Path) -> None:
    """Refuse scores tables that changed or were cut since the run recorded them."""
    from soundwatch.errors import SoundwatchError
    from soundwatch.runs import Run

    try:
        opened = Run.open(run, need_detector=False)
    except SoundwatchError:  # not a run folder (a bare scores folder): nothing recorded
        return
    for path in paths:
        opened.check_output(path)


def _json_paths(paths: dict[str, Any], run: Path) -> dict[str, Any]:
    def rel(p: Any) -> Any:
        if isinstance(p, Path):
            try:
                return str(p.relative_to(run))
            except ValueError:
                return str(p)
        if isinstance(p, dict):
            return {k: rel(v) for k, v in p.items()}
        if isinstance(p, list):
            return [rel(v) for v in p]
        return p

    return {k: rel(v) for k, v in paths.items()}
