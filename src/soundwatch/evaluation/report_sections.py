"""Sections of report.html for engineers: every clip with a player, plain words, self-check."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from soundwatch.previews import AudioPlayers
    from soundwatch.selfcheck import SelfCheck

__all__ = [
    "appendix_html",
    "clip_table_html",
    "display_names",
    "percentile_words",
    "policy_words",
    "self_check_html",
    "threshold_paragraph",
]

SECTION_CSS = """
.muted{color:#777}.alarm{color:#b00020;font-weight:bold}.sensor{color:#8a5a00;font-weight:bold}
tr.flagged td{background:#fff5f5}tr.sensor td{background:#fffaf0}
td.file{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;text-align:left}
td.words{text-align:left}audio{height:28px;width:220px;vertical-align:middle}
.check{border:1px solid #ccc;border-radius:4px;padding:.5em 1em;margin:.8em 0;background:#fcfcfc}
.check.low{border-color:#e0b800;background:#fff8e1}.check.caution{border-color:#e0b800}
.timeline{margin:.5em 0}
"""

MAX_ROWS_OPEN = 100
"""Clips shown per machine before the rest fold into a <details>."""


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def display_names(paths: Iterable[str]) -> dict[str, str]:
    """Each path shown relative to the folder all the paths share.

    MIMII's ``normal/00000000.wav`` and ``abnormal/00000000.wav`` stay distinct; files of
    one folder show by their name alone.

    Args:
        paths: File paths.

    Returns:
        path -> name to show.
    """
    items = list(dict.fromkeys(str(p) for p in paths))
    if not items:
        return {}
    parents = [os.path.dirname(p) for p in items]
    try:
        common = os.path.commonpath(parents) if all(parents) else ""
    except ValueError:  # absolute and relative paths mixed
        common = ""
    out = {}
    for p in items:
        rel = os.path.relpath(p, common) if common else p
        out[p] = PurePath(rel).as_posix()
    return out


def policy_words(policy: str) -> str:
    """How the alarm level was chosen, in words (``"gamma:0.9"`` -> a sentence part)."""
    name, _, value = str(policy).partition(":")
    try:
        q = float(value) if value else None
    except ValueError:
        q = None
    if name == "gamma":
        q = 0.9 if q is None else q
        return (f"the DCASE baseline rule: the {100 * q:g}th percentile of a gamma "
                "distribution fitted to the normal training clips' scores")
    if name == "far" and q is not None:
        return f"set so that about {100 * q:g}% of normal recordings raise an alarm"
    if name == "contamination" and q is not None:
        return f"set so that {100 * q:g}% of the normal training clips lie above it"
    if name == "fixed":
        return "set by hand"
    if name == "best-f1":
        return ("chosen on these recordings' labels to give the best F1 score (optimistic: "
                "not possible without labels)")
    return f"policy {html.escape(str(policy))}"


def percentile_words(percentile: Any, n_train: int | None) -> str:
    """Where a score lies among the normal training clips' scores, in words."""
    if _is_nan(percentile):
        return ""
    p = float(percentile)
    if n_train:
        k = int(round(p * n_train / 100))
        if k >= n_train:
            return f"above all {n_train}"
        if k <= 0:
            return f"below all {n_train}"
        if n_train <= 50:
            return f"above {k} of {n_train}"
    if p >= 100:
        return "above all"
    return f"above {p:.0f}%"


def _false_alarm_words(check: SelfCheck) -> str:
    rate = check.false_alarm_rate
    if check.clips == 0 or _is_nan(rate):
        return ""
    lo, hi = check.false_alarm_ci
    return (f"{check.false_alarms} of {check.clips} normal training clips lie above it when "
            "each is scored by a detector trained without it, so expect about "
            f"<b>{100 * rate:.1f}%</b> of normal recordings to raise an alarm (95% interval "
            f"{100 * lo:.1f}% to {100 * hi:.1f}%).")


def threshold_paragraph(thresholds: list[float], policy: str,
                        check: SelfCheck | None) -> str:
    """The alarm level of one machine in plain words."""
    if not thresholds:
        return "<p>No alarm level: this machine's detector has no threshold.</p>"
    shown = ", ".join(f"{v:.4g}" for v in thresholds[:6]) + (" ..." if len(thresholds) > 6
                                                              else "")
    level = (f"A recording raises an alarm when its anomaly score is above <b>{shown}</b>"
             if len(thresholds) == 1 else
             f"A recording raises an alarm when its anomaly score is above its section's "
             f"alarm level (<b>{shown}</b>)")
    text = f"<p>{level}, a level {policy_words(policy)}."
    if check is not None and len(thresholds) == 1 \
            and math.isclose(thresholds[0], check.threshold, rel_tol=1e-9, abs_tol=1e-12):
        text += " " + _false_alarm_words(check)
    elif check is not None and not _is_nan(check.false_alarm_rate):
        text += (f" (The self-check's false-alarm estimate below is for the detector's own "
                 f"level, {check.threshold:.4g}.)")
    return text + (" The column <i>compared with normal training</i> tells how many normal "
                   "training clips score lower than the recording.</p>")


def self_check_html(check: SelfCheck | None) -> str:
    """The machine's self-check as a short box (numbers and plain warnings)."""
    if check is None:
        return ("<p class=\"muted\">No self-check recorded (the run was trained by an older "
                "version; train again to get one).</p>")
    verdict = {"ok": "nothing found that undermines the alarms",
               "caution": "use the alarms with caution",
               "low": "do not rely on the alarms yet"}.get(check.trust, check.trust)
    rows = [("normal training clips", str(check.clips))]
    if not _is_nan(check.false_alarm_rate):
        lo, hi = check.false_alarm_ci
        rows.append(("false alarms expected (out of fold)",
                     f"{100 * check.false_alarm_rate:.1f}% ({check.false_alarms} of "
                     f"{check.clips}; 95% interval {100 * lo:.1f}% to {100 * hi:.1f}%)"))
    if check.members:
        agree = ("n/a" if check.member_agreement is None
                 else f"{check.member_agreement:.2f} (Spearman correlation of their scores "
                      "on the normal clips; 1 = they agree)")
        rows.append((f"agreement of the {check.members} ensemble members", agree))
    else:
        rows.append(("agreement of ensemble members", "n/a (a single detector)"))
    if check.spread_db is not None:
        rows.append(("how different the training clips sound",
                     f"{check.spread_db:.2f} dB between average spectra, levels within "
                     f"{check.level_range_db:.1f} dB ({check.clips_measured} clips measured)"))
    table = "".join(f"<tr><td>{html.escape(k)}</td><td class=\"words\">{v}</td></tr>"
                    for k, v in rows)
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in check.warnings)
    return (f'<div class="check {html.escape(check.trust)}"><b>Self-check: {verdict}.</b>'
            f"<table>{table}</table>"
            + (f"<ul>{warnings}</ul>" if warnings else "") + "</div>")


def _status_cell(rec: Mapping[str, Any]) -> tuple[str, str]:
    """(row class, decision cell) of a clip, sensor status first when the table has one."""
    status = rec.get("status")
    kind = status.lower() if isinstance(status, str) else ""
    if kind in ("sensor", "error"):  # soundwatch.scores.STATUS_COLUMNS
        reason = rec.get("status_reason")
        why = "" if _is_nan(reason) or not str(reason) else f": {html.escape(str(reason))}"
        text = "sensor problem" if kind == "sensor" else "not scored"
        return "sensor", f'<span class="sensor">{text}{why}</span>'
    if rec.get("decision") == 1:
        return "flagged", '<span class="alarm">ALARM</span>'
    return "", "normal"


def _order(part: pd.DataFrame) -> pd.DataFrame:
    """Flagged first (highest score first), then sensor problems, then the rest by score."""
    rank = part["decision"].fillna(0).astype(int).map({1: 0}).fillna(2)
    if "status" in part:
        rank = rank.where(~part["status"].astype(str).str.lower().isin(["sensor", "error"]), 1)
    return part.assign(_rank=rank).sort_values(["_rank", "score"],
                                               ascending=[True, False]).drop(columns="_rank")


def clip_table_html(part: pd.DataFrame, names: Mapping[str, str], players: AudioPlayers | None,
                    n_train: int | None) -> str:
    """Every clip of one machine: decision, score, its place among normal training, audio.

    Args:
        part: The machine's rows of the decided scores table.
        names: path -> name to show (:func:`display_names`).
        players: Audio players (``None``: no audio column).
        n_train: Normal training clips of the machine (for the comparison column).
    """
    ordered = _order(part)
    sections = part["section"].dropna().astype(str).unique() if "section" in part else []
    show_section = len(sections) > 1
    show_label = "label" in part and bool(part["label"].notna().any())
    head = ["recording"] + (["section"] if show_section else []) + [
        "decision", "score", "alarm level", "compared with normal training"]
    if show_label:
        head.append("true label")
    if players is not None:
        head.append("listen")
    header = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + \
        "</tr></thead>"
    rows = []
    for rec in ordered.to_dict("records"):
        cls, decision = _status_cell(rec)
        path = str(rec["path"])
        cells = [f'<td class="file" title="{html.escape(path, quote=True)}">'
                 f"{html.escape(names.get(path, path))}</td>"]
        if show_section:
            sec = rec.get("section")
            cells.append(f"<td>{'' if _is_nan(sec) else html.escape(str(sec))}</td>")
        score, thr = rec.get("score"), rec.get("threshold")
        cells += [f"<td class=\"words\">{decision}</td>",
                  f"<td>{'' if _is_nan(score) else f'{float(score):.4g}'}</td>",
                  f"<td>{'' if _is_nan(thr) else f'{float(thr):.4g}'}</td>",
                  f"<td>{percentile_words(rec.get('percentile'), n_train)}</td>"]
        if show_label:
            lab = rec.get("label")
            cells.append("<td>" + ("" if _is_nan(lab) else
                                   ("anomalous" if float(lab) == 1 else "normal")) + "</td>")
        if players is not None:
            cells.append(f"<td>{players.player(path)}</td>")
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    first = f"<table>{header}<tbody>{''.join(rows[:MAX_ROWS_OPEN])}</tbody></table>"
    if len(rows) <= MAX_ROWS_OPEN:
        return first
    return (first + f"<details><summary>the other {len(rows) - MAX_ROWS_OPEN} recordings"
            f"</summary><table>{header}<tbody>{''.join(rows[MAX_ROWS_OPEN:])}</tbody>"
            "</table></details>")


def _kv_table(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td class=\"words\">"
                   f"{html.escape(str(v))}</td></tr>" for k, v in rows if v not in (None, ""))
    return f"<table>{body}</table>" if body else ""


def appendix_html(run_info: Mapping[str, Any], *, config: str | None = None,
                  thresholds: Mapping[str, list[float]] | None = None, policy: str = "",
                  checks: Mapping[str, SelfCheck] | None = None,
                  extra: Iterable[tuple[str, str]] = ()) -> str:
    """Machine-readable details folded in a ``<details>``: run facts, thresholds, checks.

    Args:
        run_info: ``run.json``'s content (read, never dumped).
        config: ``config.yaml``'s text.
        thresholds: machine -> exact threshold values.
        policy: The threshold policy string (``gamma:0.9``...).
        checks: machine -> self-check.
        extra: More ``(title, html)`` blocks (data summary, timing, skipped files...).
    """
    parts = []
    libraries = run_info.get("libraries")
    versions = libraries if isinstance(libraries, dict) else {}
    facts = [("detector", run_info.get("detector")), ("seed", run_info.get("seed")),
             ("created", run_info.get("created")),
             ("soundwatch version", run_info.get("soundwatch_version")),
             ("git commit", run_info.get("git_commit")), ("python", run_info.get("python")),
             ("platform", run_info.get("platform")), ("threshold policy", policy)]
    facts += [(f"{k} version", v) for k, v in sorted(versions.items()) if v]
    parts.append("<h3>Run</h3>" + (_kv_table(facts) or "<p>No run.json.</p>"))
    if thresholds:
        rows = [(m, ", ".join(repr(float(v)) for v in vals)) for m, vals in
                sorted(thresholds.items())]
        parts.append("<h3>Exact thresholds</h3>" + _kv_table(rows))
    if checks:
        rows = []
        for m, c in sorted(checks.items()):
            lo, hi = c.false_alarm_ci
            rows.append((m, f"clips={c.clips} threshold={c.threshold!r} "
                         f"false_alarms={c.false_alarms} rate={c.false_alarm_rate:.4f} "
                         f"ci=[{lo:.4f}, {hi:.4f}] members={c.members} "
                         f"agreement={c.member_agreement} spread_db={c.spread_db} "
                         f"trust={c.trust}"))
        parts.append("<h3>Self-check values</h3>" + _kv_table(rows))
    for title, block in extra:
        parts.append(f"<h3>{html.escape(title)}</h3>{block}")
    if config:
        parts.append(f"<h3>Configuration (config.yaml)</h3><pre>{html.escape(config)}</pre>")
    return ('<h2 id="details">Technical details</h2><details><summary>Run facts, exact '
            "thresholds, self-check values, data counts, timing, skipped files and the "
            "configuration (click to open)</summary>" + "\n".join(parts) + "</details>")

