"""report.html: one self-contained page (inline CSS, base64 images) summarising a run."""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundwatch.atomic import write_text
from soundwatch.errors import printable

if TYPE_CHECKING:
    import pandas as pd

    from soundwatch.evaluation.evaluate import EvaluationResult
    from soundwatch.previews import AudioPlayers
    from soundwatch.selfcheck import SelfCheck

__all__ = ["build_report", "write_report", "embed_png"]

log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}
h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr.summary td{font-weight:bold;background:#fafafa}
pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.85em}
.warning{background:#fff3cd;border:1px solid #e0b800;padding:.7em 1em;margin:1em 0;
border-radius:4px}
.big{font-size:1.4em;font-weight:bold}
figure{display:inline-block;margin:.5em;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555;text-align:center}
figure.wide{display:block}
.grid{display:flex;flex-wrap:wrap;gap:.5em}figure.half{flex:1 1 46%;margin:0;max-width:49%}
details{margin:.4em 0}summary{cursor:pointer;color:#0645ad}
.bad{color:#b00020;font-weight:bold}.ok{color:#1b7f3b;font-weight:bold}
section{margin-top:1.2em}h3{font-size:1.05em;margin-top:1em}
"""

_PRETTY = {
    "auc_source": "AUC (source)", "auc_target": "AUC (target)", "pauc": "pAUC", "auc": "AUC",
    "precision": "precision", "recall": "recall", "f1": "F1", "accuracy": "accuracy",
    "score": "score", "n_clips": "clips", "n_normal": "normal", "n_anomaly": "anomalous",
}


def embed_png(path: str | os.PathLike[str]) -> str:
    """An ``<img>`` tag holding a PNG file as a base64 data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).stem)}">'


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4f}"
    return html.escape(str(value))


def _table(rows: Iterable[dict[str, Any]], columns: list[str], summary_key: str | None = None,
           summary_values: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{html.escape(_PRETTY.get(c, c))}</th>" for c in columns)
    body = []
    for row in rows:
        cls = ' class="summary"' if summary_key and row.get(summary_key) in summary_values else ""
        cells = "".join(f"<td>{_fmt(row.get(c))}</td>" for c in columns)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _results_html(results: pd.DataFrame) -> str:
    if results.empty:
        return "<p>No labelled clips: no metrics.</p>"
    skip = {"n_normal_source", "n_normal_target", "n_anomaly_source", "n_anomaly_target"}
    cols = [c for c in results.columns if c not in skip and not c.endswith("_ci_high")]
    rows = []
    for rec in results.to_dict("records"):
        row = dict(rec)
        for c in cols:
            if c.endswith("_ci_low"):
                lo, hi = rec.get(c), rec.get(c[: -len("_ci_low")] + "_ci_high")
                row[c] = "" if lo is None or (isinstance(lo, float) and math.isnan(lo)) \
                    else f"[{lo:.3f}, {hi:.3f}]"
        rows.append(row)
    html_table = _table(rows, cols, "machine", ("official score", "arithmetic mean"))
    for c in cols:
        if c.endswith("_ci_low"):
            label = _PRETTY.get(c[: -len("_ci_low")], c[: -len("_ci_low")]) + " 95% CI"
            html_table = html_table.replace(f"<th>{html.escape(c)}</th>",
                                            f"<th>{html.escape(label)}</th>", 1)
    return html_table


def _data_summary(scores: pd.DataFrame) -> str:
    df = scores.assign(
        section=scores["section"].fillna(""),
        domain=scores["domain"].fillna(""),
        label=scores["label"].map({0.0: "normal", 1.0: "anomalous"}).fillna("unlabelled"),
    )
    keys = ["machine"] + [k for k in ("section", "domain") if scores[k].notna().any()]
    counts = df.groupby([*keys, "label"]).size().unstack(fill_value=0)
    counts = counts.reset_index()
    cols = [str(c) for c in counts.columns]
    counts.columns = cols
    return _table(counts.to_dict("records"), cols)


def _read_text(path: Path, limit: int = 200_000) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:limit]
    except OSError:
        return None


def _timing_html(run_info: dict[str, Any]) -> str:
    timing = None
    for key in ("wall_times", "wall_time", "timings", "times", "durations"):
        if key in run_info:
            timing = run_info[key]
            break
    if timing is None:
        timing = {k: v for k, v in run_info.items() if "time" in k.lower() or k.endswith("_s")}
    if not timing:
        return "<p>No timing recorded.</p>"
    if not isinstance(timing, dict):
        timing = {"total": timing}
    rows = [{"step": k, "seconds": v if isinstance(v, int | float) else json.dumps(v)}
            for k, v in timing.items()]
    return _table(rows, ["step", "seconds"])


def _skipped_html(run_info: dict[str, Any]) -> str:
    skipped = run_info.get("skipped") or []
    if not skipped:
        return "<p>No files were skipped.</p>"
    items = []
    for item in skipped[:1000]:
        if isinstance(item, dict):
            text = ": ".join(str(item.get(k, "")) for k in ("path", "reason") if k in item) \
                or json.dumps(item)
        else:
            text = str(item)
        items.append(f"<li>{html.escape(text)}</li>")
    more = f"<p>... and {len(skipped) - 1000} more.</p>" if len(skipped) > 1000 else ""
    return f"<p>{len(skipped)} file(s) skipped:</p><ul>{''.join(items)}</ul>{more}"


def _figures(plots: dict[str, Any] | None) -> str:
    if not plots:
        return "<p>No plots.</p>"
    parts = []
    for title, key in (("AUC and pAUC per machine type", "bars"),
                       ("Confusion matrices", "confusion")):
        path = plots.get(key)
        if path:
            parts.append(f"<figure>{embed_png(path)}<figcaption>{title}</figcaption></figure>")
    for machine, path in sorted((plots.get("roc") or {}).items()):
        parts.append(f"<figure>{embed_png(path)}<figcaption>ROC: {html.escape(machine)}"
                     "</figcaption></figure>")
        hist = (plots.get("hist") or {}).get(machine)
        if hist:
            parts.append(f"<figure>{embed_png(hist)}<figcaption>Scores: "
                         f"{html.escape(machine)}</figcaption></figure>")
    return "\n".join(parts)


def _machine_plots(
    result: EvaluationResult, run: Path, out_dir: Path, train: pd.DataFrame | None
) -> dict[str, dict[str, Path]]:
    """Per machine: score distribution against training, and the training curve."""
    import numpy as np
    from matplotlib.figure import Figure

    from soundwatch.evaluation.plots import save_figure

    out: dict[str, dict[str, Path]] = {}
    folder = out_dir / "plots"
    for machine, part in result.scores.groupby("machine", sort=True):
        machine = str(machine)
        mine: dict[str, Path] = {}
        fig = Figure(figsize=(6.4, 2.8), dpi=90)
        ax = fig.subplots()
        scored = part["score"].to_numpy(dtype=float)
        ref = None
        if train is not None and not train.empty:
            ref = train.loc[train["machine"].astype(str) == machine, "score"].to_numpy(float)
        pool = scored if ref is None or ref.size == 0 else np.r_[scored, ref]
        bins = np.histogram_bin_edges(pool, bins=30)
        if ref is not None and ref.size:
            ax.hist(ref, bins=bins, alpha=0.5, color="tab:green", density=True,
                    label=f"training (normal, {ref.size})")
        ax.hist(scored, bins=bins, alpha=0.5, color="tab:blue", density=True,
                label=f"scored ({scored.size})")
        thr = part["threshold"].dropna().unique() if "threshold" in part else []
        for i, value in enumerate(sorted(float(v) for v in thr)[:4]):
            ax.axvline(value, color="tab:red", ls="--", lw=1,
                       label="threshold" if i == 0 else None)
        ax.set_xlabel("anomaly score")
        ax.set_ylabel("density")
        ax.set_title(f"{printable(machine)}: scores against training", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = save_figure(fig, folder / f"distribution_{machine}.png")
        mine["distribution"] = path
        curve = _training_curve(run / "train_log" / f"{machine}.csv", folder, machine)
        if curve is not None:
            mine["training"] = curve
        out[machine] = mine
    return out


def _training_curve(csv: Path, folder: Path, machine: str) -> Path | None:
    """Plot ``train_log/<machine>.csv`` (loss columns against epoch), if there is one."""
    import pandas as pd
    from matplotlib.figure import Figure

    from soundwatch.evaluation.plots import save_figure

    if not csv.is_file():
        return None
    try:
        log_df = pd.read_csv(csv)
    except (OSError, ValueError, pd.errors.ParserError):
        log.warning("%s: unreadable training log, left out of the report", csv)
        return None
    if log_df.empty:
        return None
    x = log_df["epoch"] if "epoch" in log_df else pd.Series(range(len(log_df)))
    numeric = [c for c in log_df.columns if c not in ("epoch", "step")
               and pd.api.types.is_numeric_dtype(log_df[c])]
    cols = [c for c in numeric if "loss" in c.lower()] or numeric[:3]
    if not cols:
        return None
    fig = Figure(figsize=(6.4, 2.8), dpi=90)
    ax = fig.subplots()
    for c in cols:
        ax.plot(x, log_df[c], marker="o", ms=2, lw=1, label=c)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"{printable(machine)}: training curve", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, folder / f"training_{machine}.png")


def _timelines(run: Path) -> dict[str, list[dict[str, Any]]]:
    """Long-recording results of the run (``scores/*/<stem>_events.json``) by machine."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((run / "scores").glob("*/*_events.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        png = path.with_name(path.name[: -len("_events.json")] + "_windows.png")
        data["png"] = png if png.is_file() else None
        data["folder"] = path.parent.name
        out.setdefault(str(data.get("machine", "")), []).append(data)
    return out


def _flagged_explanations(run: Path, result: EvaluationResult, scores_dir: Path | None,
                          explain: int) -> dict[tuple[str, str], Path]:
    """(machine, clip path) -> explanation PNG of the top flagged clips (made if missing)."""
    from soundwatch.explain import explain_flagged, explanation_path

    if scores_dir is None:
        return {}
    folder = scores_dir / "explain"
    if explain > 0:
        try:
            from soundwatch.runs import Run

            explain_flagged(Run.open(run), result.scores, folder, limit=explain)
        except Exception as exc:  # noqa: BLE001 - the report never fails on explanations
            log.warning("explanations left out of the report: %s", exc)
    found: dict[tuple[str, str], Path] = {}
    flagged = result.scores[result.scores["decision"] == 1]
    for machine, clip in zip(flagged["machine"], flagged["path"], strict=True):
        png = explanation_path(folder, str(machine), str(clip))
        if png.is_file():
            found[(str(machine), str(clip))] = png
    return found


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.1f}"


def _label_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return "anomalous" if float(value) == 1.0 else "normal"


def _machines_html(
    result: EvaluationResult, images: dict[str, dict[str, Path]],
    explanations: dict[tuple[str, str], Path], timelines: dict[str, list[dict[str, Any]]],
    explain: int, *, players: AudioPlayers | None = None,
    checks: dict[str, SelfCheck] | None = None, train_counts: dict[str, int] | None = None,
) -> tuple[str, str]:
    """The overview table and one section per machine type (every clip, with a player)."""
    from soundwatch.evaluation.report_sections import (
        clip_table_html,
        display_names,
        percentile_words,
        self_check_html,
        threshold_paragraph,
    )

    df = result.scores
    checks = checks or {}
    train_counts = train_counts or {}
    names = display_names(df["path"].astype(str))
    overview = []
    sections = []
    policy = str(result.thresholds.spec)
    for machine, part in df.groupby("machine", sort=True):
        machine = str(machine)
        flagged = part[part["decision"] == 1].sort_values("score", ascending=False)
        n, k = len(part), len(flagged)
        n_train = train_counts.get(machine) or (checks[machine].clips if machine in checks
                                                else None)
        status = (f'<span class="bad">{k} of {n} flagged</span>' if k
                  else f'<span class="ok">all {n} normal</span>')
        thr = sorted({float(v) for v in part["threshold"].dropna()}) if "threshold" in part \
            else []
        thr_text = ", ".join(f"{v:.4g}" for v in thr[:6]) + (" ..." if len(thr) > 6 else "")
        top = part.sort_values("score", ascending=False).iloc[0] if n else None
        check = checks.get(machine)
        verdict = ("" if check is None else
                   {"ok": '<span class="ok">ok</span>',
                    "caution": '<span class="sensor">caution</span>',
                    "low": '<span class="bad">not trustworthy yet</span>'}.get(check.trust, ""))
        top_name = html.escape(names.get(str(top["path"]), "")) if top is not None else ""
        top_pct = percentile_words(top.get("percentile"), n_train) if top is not None else ""
        overview.append(
            f'<tr><td><a href="#m-{html.escape(machine)}">{html.escape(machine)}</a></td>'
            f"<td>{status}</td><td>{n}</td><td>{thr_text}</td>"
            f'<td class="file">{top_name}</td><td>{top_pct}</td><td>{verdict}</td></tr>')
        body = [f'<section id="m-{html.escape(machine)}">',
                f"<h2>{html.escape(machine)}: {status}</h2>",
                threshold_paragraph(thr, policy, check), self_check_html(check)]
        body.append("<h3>Every recording, flagged first (highest score first)</h3>"
                    + clip_table_html(part, names, players, n_train))
        if k:
            figs = []
            for rec in flagged.head(max(explain, 0)).to_dict("records"):
                png = explanations.get((machine, str(rec["path"])))
                if png is not None:
                    figs.append(f'<figure class="half">{embed_png(png)}<figcaption>'
                                f"{html.escape(names.get(str(rec['path']), str(rec['path'])))}"
                                ": where it deviates</figcaption></figure>")
            if figs:
                body.append("<h3>Top flagged files: where they deviate</h3><p>Top: the clip's "
                            "log-mel spectrogram. Middle: how far each frequency band and "
                            "moment lies from the machine's normal training sound (|z|). "
                            "Bottom: the detector's score of short windows against the "
                            "threshold.</p>" + '<div class="grid">' + "\n".join(figs)
                            + "</div>")
        mine = images.get(machine, {})
        figs = []
        if "distribution" in mine:
            figs.append(f'<figure class="half">{embed_png(mine["distribution"])}'
                        "<figcaption>Score distribution against training</figcaption></figure>")
        if "training" in mine:
            figs.append(f'<figure class="half">{embed_png(mine["training"])}'
                        "<figcaption>Training curve</figcaption></figure>")
        if figs:
            body.append('<div class="grid">' + "\n".join(figs) + "</div>")
        for tl in timelines.get(machine, []):
            events = tl.get("events") or []
            rows = "".join(
                f"<tr><td>{e.get('start_s', 0):.2f}</td><td>{e.get('end_s', 0):.2f}</td>"
                f"<td>{e.get('peak_s', 0):.2f}</td><td>{e.get('peak_score', 0):.4g}</td></tr>"
                for e in events[:100])
            name = html.escape(Path(str(tl.get("file", ""))).name)
            own = ""
            if tl.get("report"):
                own = f' (<a href="{html.escape(tl["report"], quote=True)}">its report</a>)'
            body.append(f"<h3>Long recording {name} ({len(events)} event(s)){own}</h3>")
            if tl.get("png"):
                body.append(f'<figure class="wide">{embed_png(tl["png"])}</figure>')
            if rows:
                body.append("<table><thead><tr><th>start (s)</th><th>end (s)</th>"
                            "<th>peak at (s)</th><th>peak score</th></tr></thead>"
                            f"<tbody>{rows}</tbody></table>")
        body.append("</section>")
        sections.append("\n".join(body))
    table = ("<table><thead><tr><th>machine</th><th>status</th><th>recordings</th>"
             "<th>alarm level</th><th>highest-scoring recording</th>"
             "<th>compared with normal training</th><th>self-check</th></tr></thead>"
             f"<tbody>{''.join(overview)}</tbody></table>")
    return table, "\n".join(sections)


def _train_counts(train: pd.DataFrame | None) -> dict[str, int]:
    if train is None or train.empty:
        return {}
    return {str(m): int(c) for m, c in train.groupby("machine").size().items()}


def _self_checks(run_info: dict[str, Any], result: EvaluationResult,
                 train: pd.DataFrame | None) -> dict[str, SelfCheck]:
    """The run's self-checks, the false-alarm estimate redone at the decided threshold."""
    from soundwatch.selfcheck import at_threshold, run_self_checks

    checks = run_self_checks(run_info)
    if train is None or train.empty or "threshold" not in result.scores:
        return checks
    for machine, check in list(checks.items()):
        thr = result.scores.loc[result.scores["machine"].astype(str) == machine, "threshold"]
        values = thr.dropna().unique()
        if len(values) == 1 and not math.isclose(float(values[0]), check.threshold):
            rows = train.loc[train["machine"].astype(str) == machine, "score"]
            checks[machine] = at_threshold(check, rows.to_numpy(dtype=float), float(values[0]))
    return checks


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


def _with_percentiles(result: EvaluationResult, train: pd.DataFrame | None) -> None:
    """Fill a missing percentile column from the training scores (older scores tables)."""
    from soundwatch.decisions import percentile_of

    df = result.scores
    if train is None or train.empty or ("percentile" in df and df["percentile"].notna().any()):
        return
    pct = np.full(len(df), np.nan)
    for machine, idx in df.groupby(df["machine"].astype(str)).groups.items():
        ref = train.loc[train["machine"].astype(str) == machine, "score"].to_numpy(float)
        if ref.size:
            pct[df.index.get_indexer(idx)] = percentile_of(ref, df.loc[idx, "score"])
    result.scores = df.assign(percentile=pct)


def _plain_warnings(result: EvaluationResult) -> list[str]:
    """Evaluation warnings worth an engineer's eyes (none about missing labels)."""
    return [w for w in result.warnings
            if "no labelled clips" not in w and "have no label" not in w]


def build_report(run_dir: str | os.PathLike[str], result: EvaluationResult,
                 plots: dict[str, Any] | None = None, *,
                 machine_images: dict[str, dict[str, Path]] | None = None,
                 explanations: dict[tuple[str, str], Path] | None = None,
                 scores_dir: str | os.PathLike[str] | None = None, explain: int = 5,
                 train: pd.DataFrame | None = None, audio: bool = True,
                 report_dir: str | os.PathLike[str] | None = None,
                 max_embedded_audio: int = 40) -> str:
    """The HTML text of the report of an evaluated run (no external resources).

    Machine-centric: a summary (recordings flagged, self-check warnings), an overview
    (per machine type: status, alarm level, highest-scoring recording, self-check), then
    per machine type the alarm level in words, the self-check, every recording (flagged
    first) with its decision, its place among the normal training clips and an audio
    player, the explanations of the top flagged ones, the score distribution, long-recording
    timelines and the training curve; then the DCASE metrics when labels exist, and the
    technical details folded in an appendix.

    Args:
        run_dir: The run folder (``config.yaml`` and ``run.json`` are read if present).
        result: The evaluation.
        plots: Paths from :func:`soundwatch.evaluation.plots.make_plots` (embedded as base64).
        machine_images: machine -> ``{"distribution", "training"}`` PNG paths.
        explanations: ``(machine, clip path)`` -> explanation PNG.
        scores_dir: The evaluated scoring's folder (named in the page).
        explain: How many explanations per machine type to show.
        train: The training clips' scores (counts for the comparison column, the
            false-alarm estimate at the decided threshold).
        audio: Audio players for every recording (:class:`soundwatch.previews.AudioPlayers`:
            the first ``max_embedded_audio`` embedded, the rest linked by relative path).
        report_dir: Where the page is written (for relative links; default the run).
        max_embedded_audio: Most recordings embedded as compressed audio.
    """
    from soundwatch.evaluation.report_sections import SECTION_CSS, appendix_html

    run = Path(run_dir)
    run_info: dict[str, Any] = {}
    run_json = _read_text(run / "run.json")
    if run_json:
        try:
            loaded = json.loads(run_json)
            run_info = loaded if isinstance(loaded, dict) else {}
        except json.JSONDecodeError:
            log.warning("%s is not valid JSON; left out of the report", run / "run.json")
    config = _read_text(run / "config.yaml")
    official = result.official_score
    spec = result.thresholds.spec
    labelled = bool(result.scores["label"].notna().any())
    players = None
    if audio:
        from soundwatch.previews import AudioPlayers

        players = AudioPlayers(Path(report_dir) if report_dir is not None else run,
                               max_embedded=max_embedded_audio)
    _with_percentiles(result, train)
    checks = _self_checks(run_info, result, train)
    timelines = _timelines(run)
    for items in timelines.values():  # a long recording's own report, when made
        for tl in items:
            own = run / "scores" / str(tl.get("folder", "")) / "report.html"
            if tl.get("folder") and own.is_file():
                tl["report"] = os.path.relpath(own, Path(report_dir) if report_dir else run)
    overview, machines = _machines_html(result, machine_images or {}, explanations or {},
                                        timelines, explain, players=players,
                                        checks=checks, train_counts=_train_counts(train))
    flagged = int(result.scores["decision"].sum())
    where = f" ({html.escape(Path(scores_dir).name)})" if scores_dir is not None else ""
    sensor = errors = 0
    if "status" in result.scores:
        status = result.scores["status"].astype(str).str.lower()
        sensor, errors = int((status == "sensor").sum()), int((status == "error").sum())
    headline = f"{flagged} of {len(result.scores)} clip(s) flagged as anomalous"
    if sensor:
        headline += f"; {sensor} with a sensor problem (not counted as machine anomalies)"
    if errors:
        headline += f"; {errors} could not be scored"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>soundwatch report: {html.escape(run.name)}</title>",
        f"<style>{_CSS}{SECTION_CSS}</style></head><body>",
        f"<h1>soundwatch report: {html.escape(run.name)}{where}</h1>",
        f'<p class="big">{headline}</p>',
        "<p>A recording is flagged (an alarm) when its anomaly score is above its machine's "
        "alarm level; each machine's section below says how that level was set and how "
        "often it should ring on normal recordings.</p>",
    ]
    trust = [(m, c) for m, c in sorted(checks.items()) if c.warnings
             and m in set(result.scores["machine"].astype(str))]
    if trust:
        items = "".join(f'<li><b>{html.escape(m)}</b>: {html.escape(_first_sentence(w))} '
                        f'(<a href="#m-{html.escape(m)}">its self-check</a>)</li>'
                        for m, c in trust for w in c.warnings)
        parts.append(f'<div class="warning"><b>How far to trust these alarms:</b><ul>{items}'
                     "</ul></div>")
    parts.append(overview)
    if spec.optimistic:
        parts.append('<div class="warning"><b>Warning:</b> the best-f1 threshold was chosen '
                     "on the test labels, so precision, recall and F1 are optimistic "
                     "(not achievable without labels).</div>")
    shown = _plain_warnings(result)
    if shown:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in shown[:50])
        parts.append(f'<div class="warning"><b>Warnings during evaluation:</b><ul>{items}'
                     "</ul></div>")
    parts.append(machines)
    if players is not None and players.note():
        parts.append(f'<p class="muted">{html.escape(players.note())}</p>')
    if labelled:
        name = "Official score" if result.mode == "dcase2024" else "Score"
        parts += ["<h2>DCASE metrics</h2>",
                  f'<p class="big">{name}: {_fmt(official)}</p>',
                  f"<p>Mode: <b>{html.escape(result.mode)}</b>. "
                  f"{html.escape(result.metrics.get('definition', ''))}</p>",
                  _results_html(result.results)]
        parts += ["<h3>Plots</h3>", _figures(plots)]
    else:
        parts.append('<p class="muted">These recordings carry no labels (normal or '
                     "anomalous), so the report shows decisions only; detection quality "
                     "(AUC) needs labelled recordings (<code>--ground-truth</code>).</p>")
    thresholds = {}
    if "threshold" in result.scores:
        for machine, part in result.scores.groupby("machine", sort=True):
            thresholds[str(machine)] = sorted({float(v) for v in part["threshold"].dropna()})
    parts.append(appendix_html(
        run_info, config=config, thresholds=thresholds, policy=str(spec), checks=checks,
        extra=[("Recordings per machine", _data_summary(result.scores)),
               ("Timing (seconds)", _timing_html(run_info)),
               ("Skipped files", _skipped_html(run_info))]))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(run_dir: str | os.PathLike[str], result: EvaluationResult,
                 plots: dict[str, Any] | None = None, *,
                 scores_dir: str | os.PathLike[str] | None = None,
                 out_dir: str | os.PathLike[str] | None = None,
                 train: pd.DataFrame | None = None, explain: int = 5,
                 draw: bool = True) -> Path:
    """Write ``report.html`` atomically (into ``out_dir``, default the run) and return its path.

    Draws the per-machine plots and, for the top ``explain`` flagged clips per machine
    type, the explanation images (:mod:`soundwatch.explain`) it embeds; with ``draw``
    false (``--no-plots``) it draws no figure at all.
    """
    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run
    images: dict[str, dict[str, Path]] = {}
    if not draw:
        explain = 0
    try:
        images = _machine_plots(result, run, out, train) if draw else {}
    except (OSError, ValueError) as exc:
        log.warning("machine plots left out of the report: %s", exc)
    explanations = _flagged_explanations(
        run, result, Path(scores_dir) if scores_dir is not None else None, explain)
    path = out / "report.html"
    write_text(path, build_report(run, result, plots, machine_images=images,
                                  explanations=explanations, scores_dir=scores_dir,
                                  explain=explain, train=train, report_dir=out))
    return path
