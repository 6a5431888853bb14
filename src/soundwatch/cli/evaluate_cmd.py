"""``soundwatch evaluate``: metrics, thresholds, plots and report of a run folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from soundwatch.cli.app import app, make_console

_PRETTY = {
    "auc_source": "AUC src", "auc_target": "AUC tgt", "pauc": "pAUC", "auc": "AUC",
    "precision": "prec", "recall": "rec", "f1": "F1", "accuracy": "acc", "score": "hmean",
}


SCORE_COLUMN_NAME = {"dcase2024": "hmean", "dcase2020": "mean", "labelled": "mean"}
"""What each mode's per-row ``score`` is: the DCASE 2024 harmonic mean of AUC (source),
AUC (target) and pAUC; the arithmetic mean of AUC and pAUC in the other modes."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def print_evaluation(result: Any, title: str, console: Any) -> None:
    """Print an evaluation's results table and summary line with rich.

    Args:
        result: An :class:`~soundwatch.evaluation.evaluate.EvaluationResult`.
        title: The table's title.
        console: A ``rich.console.Console``.
    """
    from rich import box
    from rich.table import Table

    if not result.scores["label"].notna().any():
        name = title.split(":", 1)[0]  # the run; the metrics mode means nothing here
        console.print(f"{name}: no labelled clips, so no detection metrics (the decisions "
                      "need none; give --ground-truth DIR to measure them)", highlight=False)
        return
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 0, 0, 2))
    shown = result.results.dropna(axis=1, how="all")  # e.g. no AUC column in DCASE 2024 mode
    cols = [c for c in shown.columns if c in ("machine", "section") or c in _PRETTY]
    pretty = {**_PRETTY, "score": SCORE_COLUMN_NAME.get(result.mode, "score")}
    for c in cols:
        if c in ("machine", "section"):
            table.add_column(c[:3] if c == "section" else c, no_wrap=True)
        else:
            table.add_column(pretty[c], justify="right", no_wrap=True)
    for rec in result.results.to_dict("records"):
        style = "bold" if rec.get("machine") == "official score" else None
        table.add_row(*[_cell(rec.get(c)) for c in cols], style=style)
    console.print(table)
    name = "official score" if result.mode == "dcase2024" else "score"
    line = f"{name}: [bold]{_cell(result.official_score)}[/bold]"
    if result.ci is not None:
        lo, hi = result.ci["summary"].get("official_score", [float("nan")] * 2)
        line += f" (95% CI {_cell(lo)} to {_cell(hi)}, {result.ci['n_boot']} bootstrap replicates)"
    console.print(line)
    if result.thresholds.spec.optimistic:
        console.print("[yellow]warning: best-f1 uses the test labels; precision/recall/F1 are "
                      "optimistic[/yellow]")


def _windowed_report(run: Path, scores: Path | None, as_json: bool, console: Any) -> bool:
    """A long-recording scoring: write its report (no metrics) and say so; else False."""
    from soundwatch.evaluation.windows_report import find_windowed_scoring, write_windowed_report

    found = find_windowed_scoring(run, scores)
    if found is None:
        return False
    path = write_windowed_report(*found)
    if as_json:
        import json

        typer.echo(json.dumps({"kind": "windows", "scores_dir": str(found[1]),
                               "paths": {"report": str(path)}}, indent=2))
    else:
        console.print(f"{found[1].name}: a long recording scored in windows (no metrics)",
                      highlight=False)
        console.print(f"report: {path}", highlight=False)
    return True


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder (or one of its scoring folders).")],
    scores: Annotated[
        Path | None,
        typer.Argument(help="Scoring to evaluate: a folder holding scores.csv, or its name "
                       "under RUN/scores/ (default: the newest)."),
    ] = None,
    ground_truth: Annotated[
        Path | None,
        typer.Option("--ground-truth", help="Folder of DCASE ground_truth_<machine>_section_<XX>"
                     "_test.csv files (labels; domains under ground_truth_domain/)."),
    ] = None,
    threshold: Annotated[
        str | None,
        typer.Option("--threshold", help="Also show what this policy would flag, as a "
                     "suggestion: far:RATE, gamma:Q, contamination:Q, fixed:VALUE or best-f1 "
                     "(optimistic: uses the test labels). The decisions stay the scoring's "
                     "(fixed at training; change them with soundwatch threshold).",
                     show_default=False),
    ] = None,
    ci: Annotated[bool, typer.Option("--ci", help="Bootstrap 95% confidence intervals.")] = False,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap replicates.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    mode: Annotated[
        str,
        typer.Option("--mode", help="auto (from the data: DCASE 2020 and MIMII layouts in "
                     "dcase2020), dcase2024 (domains), dcase2020 (machine IDs) or labelled."),
    ] = "auto",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw PNG plots.")] = True,
    explain: Annotated[
        int, typer.Option("--explain", min=0, help="Explanation images in the report for up "
                          "to this many flagged clips per machine type (0: none).")
    ] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print metrics.json's content on stdout.")
    ] = False,
) -> None:
    """Evaluate a scoring: decisions, DCASE metrics, metrics.json, results.csv, report.html."""
    from soundwatch.evaluation.evaluate import evaluate_run

    console = make_console()
    if _windowed_report(run, scores, as_json, console):
        return
    if as_json:
        import json

        result = evaluate_run(run, ground_truth=ground_truth, threshold=threshold, ci=ci,
                              mode=mode, n_boot=n_boot, seed=seed, plots=plots, scores=scores,
                              explain=explain)
        files = {k: str(v) for k, v in result.paths.items() if not isinstance(v, list | dict)}
        typer.echo(json.dumps({**result.metrics, "paths": files}, indent=2, default=str))
        return
    with console.status("evaluating..."):
        result = evaluate_run(run, ground_truth=ground_truth, threshold=threshold, ci=ci,
                              mode=mode, n_boot=n_boot, seed=seed, plots=plots, scores=scores,
                              explain=explain)
    title = f"{run.name}: {result.mode}, threshold {result.thresholds.spec}"
    print_evaluation(result, title=title, console=console)
    flagged = int(result.scores["decision"].sum())
    console.print(f"{flagged} of {len(result.scores)} clip(s) flagged (decisions of the "
                  f"scoring, {result.metrics['decision']['policy']})", highlight=False)
    sensor = int(result.metrics["counts"].get("sensor") or 0)
    if sensor:
        console.print(f"{sensor} clip(s) with a sensor problem (status 'sensor'; never "
                      "counted as anomalies)", highlight=False)
    for name, tip in result.suggestions.items():
        extra = "".join(f", {k} {tip[k]:.3f}" for k in ("precision", "recall", "f1")
                        if isinstance(tip.get(k), float) and not math.isnan(tip[k]))
        note = " (optimistic: chosen on the test labels)" if tip.get("optimistic") else ""
        console.print(f"suggestion, not applied: {name} would flag {tip['flagged']}{extra}"
                      f"{note}", highlight=False)
    for key in ("metrics", "results", "report"):
        if key in result.paths:
            console.print(f"{key}: {result.paths[key]}", highlight=False)
