"""report.html of a long-recording scoring: timeline, events with audio players, self-check."""

from __future__ import annotations

import contextlib
import html
import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundwatch.atomic import write_text
from soundwatch.errors import EvaluationError

if TYPE_CHECKING:
    import pandas as pd

    from soundwatch.previews import AudioPlayers
    from soundwatch.selfcheck import SelfCheck

__all__ = ["find_windowed_scoring", "is_windowed_scoring", "build_windowed_report",
           "write_windowed_report"]

log = logging.getLogger(__name__)

EVENT_PAD_S = 1.0
"""Seconds of audio before and after an event in its player."""
MAX_WINDOW_ROWS = 2000
"""Window rows listed in the appendix."""


def is_windowed_scoring(folder: str | os.PathLike[str]) -> bool:
    """Whether a folder holds a long-recording scoring (``*_events.json``, no scores.csv)."""
    folder = Path(folder)
    return (folder.is_dir() and not (folder / "scores.csv").is_file()
            and any(folder.glob("*_events.json")))


def _read_json(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def find_windowed_scoring(
    run_dir: str | os.PathLike[str], scores: str | os.PathLike[str] | None = None
) -> tuple[Path, Path] | None:
    """The run and long-recording scoring folder to report, or ``None`` if it is not one.

    Args:
        run_dir: A run folder, or a long-recording scoring folder itself.
        scores: A scoring folder or its name under ``RUN/scores/``; default the run's
            newest scoring (as ``run.json`` records them).

    Returns:
        ``(run_root, scoring_dir)`` when the scoring is a long recording's, else ``None``.
    """
    run = Path(run_dir)
    if scores is None:
        if is_windowed_scoring(run):
            parent = run.parent.parent
            return (parent if (parent / "run.json").is_file() else run), run
        recorded = _read_json(run / "run.json").get("scorings") or {}
        if not isinstance(recorded, dict) or not recorded:
            return None
        name, entry = list(recorded.items())[-1]
        if not isinstance(entry, dict) or entry.get("kind") != "windows":
            return None
        folder = Path(entry.get("folder") or run / "scores" / str(name))
        return (run, folder) if is_windowed_scoring(folder) else None
    folder = Path(scores)
    if not is_windowed_scoring(folder) and is_windowed_scoring(run / "scores" / folder):
        folder = run / "scores" / folder
    return (run, folder) if is_windowed_scoring(folder) else None


def _clock(seconds: float, total: float) -> str:
    """``12.0 s`` for short recordings, ``1:02:05`` / ``2:05.0`` for long ones."""
    if total < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def _timeline_svg(windows: pd.DataFrame, events: list[dict[str, Any]], threshold: float,
                  total: float) -> str:
    """The window scores over time as an inline SVG: events shaded, threshold dashed."""
    import numpy as np

    width, height, left, right, top, bottom = 1000, 190, 60, 34, 10, 34
    pw, ph = width - left - right, height - top - bottom
    mids = ((windows["start_s"] + windows["end_s"]) / 2).to_numpy(float)
    values = windows["score"].to_numpy(float)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or total <= 0:
        return ""
    lo, hi = float(finite.min()), float(finite.max())
    if math.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad

    def x(t: float) -> float:
        return left + pw * t / total

    def y(v: float) -> float:
        return top + ph * (hi - v) / (hi - lo)

    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height}" width="100%" '
             'role="img" aria-label="window scores over time" '
             'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="sans-serif">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" '
             'stroke="#999"/>']
    for i, ev in enumerate(events, 1):
        x0, x1 = x(float(ev.get("start_s", 0))), x(float(ev.get("end_s", 0)))
        parts.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{ph}" fill="#d62728" fill-opacity="0.18">'
                     f"<title>event {i}</title></rect>"
                     f'<text x="{(x0 + x1) / 2:.1f}" y="{top + 12}" text-anchor="middle" '
                     f'fill="#b00020">{i}</text>')
    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(mids, values, strict=True)
                      if math.isfinite(v))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#1f77b4" '
                 'stroke-width="1.3"/>')
    if math.isfinite(threshold):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(threshold):.1f}" '
                     f'y2="{y(threshold):.1f}" stroke="#d62728" stroke-dasharray="5,4"/>'
                     f'<text x="{left - 4}" y="{y(threshold) + 4:.1f}" text-anchor="end" '
                     'fill="#d62728">alarm</text>')
    for v in (lo + pad, hi - pad):
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    step = _tick_step(total)
    t = 0.0
    while t <= total + 1e-9:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + ph}" '
                     f'y2="{top + ph + 4}" stroke="#555"/><text x="{x(t):.1f}" '
                     f'y="{top + ph + 16}" text-anchor="middle">{_clock(t, total)}</text>')
        t += step
    parts.append(f'<text x="{left + pw / 2}" y="{height - 2}" text-anchor="middle">time in '
                 "the recording</text></svg>")
    return "".join(parts)


def _tick_step(total: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if total / step <= 10:
            return float(step)
    return total / 10


def _event_rows(events: list[dict[str, Any]], windows: pd.DataFrame, audio_file: Path,
                total: float, players: AudioPlayers | None, n_train: int | None) -> str:
    from soundwatch.evaluation.report_sections import percentile_words

    rows = []
    for i, ev in enumerate(events, 1):
        start, end = float(ev.get("start_s", 0)), float(ev.get("end_s", 0))
        inside = windows[(windows["start_s"] >= start - 1e-6) & (windows["end_s"] <= end + 1e-6)]
        pct = float(inside["percentile"].max()) if "percentile" in inside and len(inside) \
            else float("nan")
        listen = ""
        if players is not None:
            excerpt = (max(start - EVENT_PAD_S, 0.0), min(end + EVENT_PAD_S, total))
            listen = f"<td>{players.player(audio_file, *excerpt)}</td>"
        rows.append(
            f'<tr class="flagged"><td>{i}</td><td>{_clock(start, total)}</td>'
            f"<td>{_clock(end, total)}</td><td>{end - start:.1f} s</td>"
            f"<td>{_clock(float(ev.get('peak_s', start)), total)}</td>"
            f"<td>{float(ev.get('peak_score', float('nan'))):.4g}</td>"
            f"<td>{percentile_words(pct, n_train)}</td>{listen}</tr>")
    head = ("<tr><th>event</th><th>from</th><th>to</th><th>duration</th><th>loudest "
            "moment</th><th>peak score</th><th>compared with normal training</th>"
            + ("<th>listen (event ± 1 s)</th>" if players is not None else "") + "</tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _windows_table(windows: pd.DataFrame, total: float) -> str:
    rows = []
    for rec in windows.head(MAX_WINDOW_ROWS).to_dict("records"):
        rows.append(f"<tr><td>{_clock(float(rec['start_s']), total)}</td>"
                    f"<td>{_clock(float(rec['end_s']), total)}</td>"
                    f"<td>{float(rec['score']):.6g}</td>"
                    f"<td>{'alarm' if int(rec.get('decision', 0) or 0) else ''}</td>"
                    f"<td>{float(rec.get('percentile', float('nan'))):.1f}</td></tr>")
    more = (f"<p>... and {len(windows) - MAX_WINDOW_ROWS} more windows (see the CSV).</p>"
            if len(windows) > MAX_WINDOW_ROWS else "")
    return ("<table><thead><tr><th>from</th><th>to</th><th>score</th><th>decision</th>"
            "<th>percentile among normal training</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>" + more)


def _recording_html(events_json: Path, run_root: Path, players: AudioPlayers | None,
                    checks: dict[str, SelfCheck], train: pd.DataFrame | None,
                    report_dir: Path) -> tuple[str, str, dict[str, Any]]:
    """(section html, appendix html, facts) of one long recording of the scoring."""
    import pandas as pd

    from soundwatch.evaluation.report import embed_png
    from soundwatch.evaluation.report_sections import policy_words, self_check_html
    from soundwatch.selfcheck import at_threshold

    data = _read_json(events_json)
    stem = events_json.name[: -len("_events.json")]
    csv = events_json.with_name(f"{stem}_windows.csv")
    try:
        windows = pd.read_csv(csv)
    except (OSError, ValueError) as exc:
        raise EvaluationError(csv, f"window scores unreadable: {exc}") from exc
    missing = {"start_s", "end_s", "score"} - set(windows.columns)
    if missing:
        raise EvaluationError(csv, f"missing column(s) {', '.join(sorted(missing))}")
    for col in ("start_s", "end_s", "score", "threshold", "decision", "percentile"):
        if col in windows:
            try:
                windows[col] = pd.to_numeric(windows[col])
            except (TypeError, ValueError) as exc:
                raise EvaluationError(csv, f"column {col!r} is not numeric") from exc
    machine = str(data.get("machine", ""))
    audio_file = Path(str(data.get("file", "")))
    events = [e for e in (data.get("events") or []) if isinstance(e, dict)]
    total = float(windows["end_s"].max()) if len(windows) else 0.0
    threshold = data.get("threshold")
    threshold = float("nan") if threshold is None else float(threshold)
    policy = str(data.get("policy") or "gamma")
    flagged = int(windows["decision"].sum()) if "decision" in windows else 0
    n_train = None
    check = checks.get(machine)
    if train is not None and not train.empty:
        rows = train.loc[train["machine"].astype(str) == machine, "score"]
        n_train = len(rows) or None
        if check is not None and len(rows) and math.isfinite(threshold) \
                and not math.isclose(threshold, check.threshold):
            check = at_threshold(check, rows.to_numpy(float), threshold)
    window_s = data.get("window_s")
    hop_s = data.get("hop_s")
    name = html.escape(audio_file.name or stem)
    body = [f'<section id="r-{html.escape(stem)}">',
            f"<h2>{name} ({html.escape(machine)}): "
            + (f'<span class="bad">{len(events)} anomalous event(s)</span>' if events
               else '<span class="ok">no anomalous event</span>') + "</h2>"]
    cut = (f"cut into {float(window_s):g} s windows every {float(hop_s):g} s "
           f"({len(windows)} windows)") if window_s and hop_s else f"{len(windows)} windows"
    if math.isfinite(threshold):
        body.append(
            f"<p>The {_clock(total, total)} recording was {cut}. A window raises an alarm when "
            f"its anomaly score is above <b>{threshold:.4g}</b>, a level "
            f"{policy_words(policy)}; {flagged} of {len(windows)} windows did. Alarming "
            "windows that overlap or touch form one event.</p>")
    else:
        body.append(f"<p>The recording was {cut}; the detector has no alarm level, so no "
                    "window was judged.</p>")
    svg = _timeline_svg(windows, events, threshold, total)
    if svg:
        body.append("<h3>Timeline</h3>" + svg + '<p class="muted">Blue: the anomaly score of '
                    "each window; dashed red: the alarm level; shaded and numbered: the "
                    "events.</p>")
    png = events_json.with_name(f"{stem}_windows.png")
    if png.is_file():
        body.append(f"<details><summary>the same timeline as an image</summary>"
                    f'<figure class="wide">{embed_png(png)}</figure></details>')
    if events:
        body.append("<h3>Events, in time order</h3>"
                    + _event_rows(events, windows, audio_file, total, players, n_train))
    if audio_file.is_file():
        rel = html.escape(Path(os.path.relpath(audio_file.resolve(), report_dir.resolve()))
                          .as_posix(), quote=True)
        body.append(f'<p>The whole recording: <a href="{rel}">{html.escape(str(audio_file))}'
                    "</a></p>")
    else:
        body.append(f'<p class="muted">The recording {html.escape(str(audio_file))} is not '
                    "found from here: no audio players.</p>")
    body.append(f"<h3>Self-check of the {html.escape(machine)} detector</h3>"
                + self_check_html(check))
    body.append("</section>")
    appendix = (f"<h3>Windows of {name}</h3>" + _windows_table(windows, total))
    facts = {"machine": machine, "events": len(events), "threshold": threshold,
             "policy": policy, "check": check}
    return "\n".join(body), appendix, facts


def build_windowed_report(run_dir: str | os.PathLike[str], scoring_dir: str | os.PathLike[str],
                          *, audio: bool = True, max_embedded_audio: int = 40) -> str:
    """The HTML of a long-recording scoring's report (self-contained but for linked audio).

    Per recording: a summary in words, the timeline (inline SVG, plus the scoring's PNG
    when drawn), the events with an audio player each (the event ± 1 s, embedded up to
    ``max_embedded_audio``, then linked), the machine's self-check; the window table and
    the run's facts in a folded appendix.

    Args:
        run_dir: The run folder.
        scoring_dir: The scoring's folder (``<stem>_events.json`` + ``<stem>_windows.csv``).
        audio: Audio players for the events.
        max_embedded_audio: Most event excerpts embedded.

    Raises:
        EvaluationError: No long-recording result in the folder, or unreadable windows.
    """
    from soundwatch.evaluation.report import (
        _CSS,
        _first_sentence,
        _read_text,
        _skipped_html,
        _timing_html,
    )
    from soundwatch.evaluation.report_sections import SECTION_CSS, appendix_html
    from soundwatch.scores import read_scores_table
    from soundwatch.selfcheck import run_self_checks

    run, folder = Path(run_dir), Path(scoring_dir)
    found = sorted(folder.glob("*_events.json"))
    if not found:
        raise EvaluationError(folder, "no long-recording result (*_events.json) here")
    run_info = _read_json(run / "run.json")
    train = None
    train_path = run / "scores" / "train_scores.csv"
    if train_path.is_file():
        try:
            train = read_scores_table(train_path)
        except EvaluationError as exc:
            log.warning("training scores left out of the report: %s", exc)
    players = None
    if audio:
        from soundwatch.previews import AudioPlayers

        players = AudioPlayers(folder, max_embedded=max_embedded_audio)
    checks = run_self_checks(run_info)
    sections, appendices, facts = [], [], []
    for path in found:
        section, appendix, fact = _recording_html(path, run, players, checks, train, folder)
        sections.append(section)
        appendices.append(("Windows", appendix))
        facts.append(fact)
    n_events = sum(f["events"] for f in facts)
    used = {f["machine"]: f["check"] for f in facts if f["check"] is not None}
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>soundwatch report: {html.escape(run.name)} ({html.escape(folder.name)})"
             "</title>", f"<style>{_CSS}{SECTION_CSS}</style></head><body>",
             f"<h1>soundwatch report: {html.escape(run.name)} ({html.escape(folder.name)})</h1>",
             f'<p class="big">{n_events} anomalous event(s) in {len(found)} long '
             "recording(s)</p>"]
    warn = [(m, w) for m, c in sorted(used.items()) for w in c.warnings]
    if warn:
        items = "".join(f"<li><b>{html.escape(m)}</b>: {html.escape(_first_sentence(w))} "
                        "(see the self-check below)</li>" for m, w in warn)
        parts.append(f'<div class="warning"><b>How far to trust these alarms:</b><ul>{items}'
                     "</ul></div>")
    parts += sections
    if players is not None and players.note():
        parts.append(f'<p class="muted">{html.escape(players.note())}</p>')
    thresholds = {f["machine"]: [f["threshold"]] for f in facts if math.isfinite(f["threshold"])}
    parts.append(appendix_html(
        run_info, config=_read_text(run / "config.yaml"), thresholds=thresholds,
        policy=", ".join(sorted({f["policy"] for f in facts})), checks=used,
        extra=[*appendices, ("Timing (seconds)", _timing_html(run_info)),
               ("Skipped files", _skipped_html(run_info))]))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_windowed_report(run_dir: str | os.PathLike[str],
                          scoring_dir: str | os.PathLike[str], **options: Any) -> Path:
    """Write ``report.html`` into a long-recording scoring's folder and return its path.

    Args:
        run_dir: The run folder.
        scoring_dir: The scoring's folder.
        **options: Passed to :func:`build_windowed_report`.
    """
    path = Path(scoring_dir) / "report.html"
    write_text(path, build_windowed_report(run_dir, scoring_dir, **options))
    return path
